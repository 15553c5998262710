//! API reference: `/v1` as the OpenAPI document describes it, rendered here from the document
//! the binary serves (no CDN, no script): each operation with its parameters, body and answers,
//! and the schemas they name. The document itself is one link away, for API tools.
//!
//! One file: the page has no data step of its own (the document is compiled in), so the handler
//! parses it and `reference` and the functions above it are the pure view.

use std::collections::BTreeMap;

use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{self, Section};
use super::session::Admin;
use crate::api::openapi;

const METHODS: [&str; 6] = ["get", "head", "post", "put", "patch", "delete"];

/// `#/components/schemas/Name` → `Name`; an inline schema → its type.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    match (&schema["type"], &schema["items"]) {
        (Value::String(kind), items) if kind == "array" => format!("{}[]", schema_name(items)),
        (Value::String(kind), _) => kind.clone(),
        (Value::Array(kinds), _) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema["oneOf"].is_array() => "one of several".to_owned(),
        _ => "object".to_owned(),
    }
}

fn type_link(schema: &Value) -> Markup {
    let name = schema_name(schema);
    html! {
        @if schema["$ref"].is_string() { a href={"#schema-" (name)} { code { (name) } } }
        @else { code { (name) } }
    }
}

fn operation(path: &str, method: &str, op: &Value) -> Markup {
    let id = op["operationId"].as_str().unwrap_or_default();
    let summary = op["summary"]
        .as_str()
        .or(op["description"].as_str())
        .unwrap_or_default();
    let body = &op["requestBody"]["content"]["application/json"]["schema"];
    let responses = op["responses"].as_object().cloned().unwrap_or_default();
    html! {
        section.card id={"op-" (id)} {
            h3 { code { (method.to_uppercase()) " " (path) } }
            p { (summary) }
            @if let Some(params) = op["parameters"].as_array() {
                table {
                    thead { tr { th { "Parameter" } th { "In" } th { "Type" } th { "Meaning" } } }
                    tbody { @for p in params { tr {
                        td { code { (p["name"].as_str().unwrap_or_default()) } }
                        td { (p["in"].as_str().unwrap_or_default()) }
                        td { (type_link(&p["schema"])) }
                        td { (p["description"].as_str().unwrap_or_default()) }
                    } } }
                }
            }
            @if !body.is_null() { p { "Body: " (type_link(body)) } }
            table {
                thead { tr { th { "Status" } th { "Answer" } th { "When" } } }
                tbody { @for (status, answer) in &responses { tr {
                    td { (status) }
                    td { @for (kind, content) in answer["content"].as_object().into_iter().flatten() {
                        (type_link(&content["schema"])) " " span.muted { (kind) } br;
                    } }
                    td { (answer["description"].as_str().unwrap_or_default()) }
                } } }
            }
        }
    }
}

pub async fn page(admin: Admin) -> Response {
    let document: Value =
        serde_json::from_str(openapi::json()).expect("the served document is JSON");
    let body = reference(&document);
    layout::page(&admin, Section::Reference, "API reference", None, body)
}

/// The whole reference from an OpenAPI document: operations grouped by their first tag, in the
/// document's order of tags, then the schemas.
fn reference(document: &Value) -> Markup {
    let mut by_tag: BTreeMap<String, Vec<(String, &str, &Value)>> = BTreeMap::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                by_tag
                    .entry(tag)
                    .or_default()
                    .push((path.clone(), method, op));
            }
        }
    }
    let tags = document["tags"].as_array().cloned().unwrap_or_default();
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    html! {
        h1 { "API reference" }
        p {
            (document["info"]["description"].as_str().unwrap_or_default())
            " The machine-readable document: " a href="/v1/openapi.json" { code { "/v1/openapi.json" } }
            " (OpenAPI 3.1, no key needed), for API tools and client generators."
        }
        @for tag in &tags {
            @let name = tag["name"].as_str().unwrap_or_default();
            h2 id={"tag-" (name)} { (name) }
            p.muted { (tag["description"].as_str().unwrap_or_default()) }
            @for (path, method, op) in by_tag.get(name).into_iter().flatten() {
                (operation(path, method, op))
            }
        }
        h2 id="schemas" { "Schemas" }
        @for (name, schema) in &schemas {
            section.card id={"schema-" (name)} {
                h3 { code { (name) } }
                @if let Some(text) = schema["description"].as_str() { p { (text) } }
                @if let Some(properties) = schema["properties"].as_object() {
                    @let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    table {
                        thead { tr { th { "Field" } th { "Type" } th { "Meaning" } } }
                        tbody { @for (field, property) in properties { tr {
                            td { code { (field) } @if required.contains(&field.as_str()) { " " span.muted { "required" } } }
                            td { (type_link(property)) }
                            td { (property["description"].as_str().unwrap_or_default()) }
                        } } }
                    }
                }
                @if let Some(values) = schema["enum"].as_array() {
                    p { "One of: " @for v in values { code { (v.as_str().unwrap_or_default()) } " " } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_grouped_by_tag_and_link_to_their_schemas() {
        let document = serde_json::json!({
            "info": { "description": "Grantry's API." },
            "tags": [{ "name": "profiles", "description": "Application connections." }],
            "paths": { "/v1/profiles/{id}": { "get": {
                "operationId": "getProfile",
                "tags": ["profiles"],
                "summary": "One profile.",
                "parameters": [{ "name": "id", "in": "path", "schema": { "type": "string" } }],
                "responses": { "200": {
                    "description": "The profile.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Profile" } } }
                } }
            } } },
            "components": { "schemas": { "Profile": {
                "properties": { "id": { "type": "string", "description": "Its id." } },
                "required": ["id"]
            } } }
        });
        let html = reference(&document).into_string();
        assert!(html.contains(r#"<h2 id="tag-profiles">profiles</h2>"#));
        assert!(html.contains(r#"<section class="card" id="op-getProfile"><h3><code>GET /v1/profiles/{id}</code></h3>"#));
        assert!(html.contains(r##"<a href="#schema-Profile"><code>Profile</code></a>"##));
        assert!(html.contains(r#"<section class="card" id="schema-Profile">"#));
        assert!(html.contains(r#"<code>id</code> <span class="muted">required</span>"#));
    }
}
