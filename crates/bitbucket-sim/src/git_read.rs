//! What the REST APIs read from the repositories on disk, and the control API's commits: trees,
//! files, commit lists and diffs, by asking `git` itself, so the answers are real ones.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::world::error::WorldError;

fn git(repository: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bitbucket Simulator")
        .env("GIT_AUTHOR_EMAIL", "sim@bitbucket.invalid")
        .env("GIT_COMMITTER_NAME", "Bitbucket Simulator")
        .env("GIT_COMMITTER_EMAIL", "sim@bitbucket.invalid")
        .arg("--git-dir")
        .arg(repository)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs git in `repository`; answers its output, or `None` when it failed.
async fn output(repository: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let done = git(repository).args(args).output().await.ok()?;
    done.status.success().then_some(done.stdout)
}

async fn text(repository: &Path, args: &[&str]) -> Option<String> {
    let bytes = output(repository, args).await?;
    Some(String::from_utf8_lossy(&bytes).trim_end().to_owned())
}

/// A commit's full hash, from a hash, a prefix or a branch name.
pub async fn resolve(repository: &Path, revision: &str) -> Option<String> {
    if revision.is_empty() || revision.starts_with('-') {
        return None;
    }
    let spec = format!("{revision}^{{commit}}");
    text(repository, &["rev-parse", "--verify", "--quiet", &spec]).await
}

/// One entry of a directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub directory: bool,
    pub size: u64,
}

/// What a path in a commit is.
#[derive(Debug)]
pub enum Found {
    Directory(Vec<Entry>),
    File { size: u64 },
}

/// The directory or file at `path` (empty: the root) in `commit`.
pub async fn at(repository: &Path, commit: &str, path: &str) -> Option<Found> {
    let path = path.trim_matches('/');
    let object = format!("{commit}:{path}");
    match text(repository, &["cat-file", "-t", &object])
        .await?
        .as_str()
    {
        "blob" => {
            let size = text(repository, &["cat-file", "-s", &object]).await?;
            Some(Found::File {
                size: size.parse().ok()?,
            })
        }
        "tree" => {
            let listing = text(repository, &["ls-tree", "-l", &object]).await?;
            let entries = listing
                .lines()
                .filter_map(|line| {
                    let (meta, name) = line.split_once('\t')?;
                    let mut fields = meta.split_whitespace();
                    let (_, kind, _, size) = (
                        fields.next()?,
                        fields.next()?,
                        fields.next()?,
                        fields.next()?,
                    );
                    let full = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}/{name}")
                    };
                    Some(Entry {
                        path: full,
                        directory: kind == "tree",
                        size: size.parse().unwrap_or(0),
                    })
                })
                .collect();
            Some(Found::Directory(entries))
        }
        _ => None,
    }
}

/// A commit, as the API shows it.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub hash: String,
    pub parents: Vec<String>,
    pub author: String,
    pub date: String,
    pub message: String,
}

/// The commits reachable from `to` and not from `from` (all of `to`'s history when `from` is
/// `None`), newest first, at most `limit`.
pub async fn commits(
    repository: &Path,
    from: Option<&str>,
    to: &str,
    limit: usize,
) -> Vec<CommitInfo> {
    let range = match from {
        Some(from) => format!("{from}..{to}"),
        None => to.to_owned(),
    };
    let format = "--format=%H%x1f%P%x1f%an <%ae>%x1f%aI%x1f%B%x1e";
    let most = format!("--max-count={limit}");
    let Some(log) = text(repository, &["log", format, &most, &range, "--"]).await else {
        return Vec::new();
    };
    log.split('\u{1e}')
        .filter_map(|record| {
            let mut fields = record.trim_start_matches('\n').splitn(5, '\u{1f}');
            Some(CommitInfo {
                hash: fields.next()?.to_owned(),
                parents: fields
                    .next()?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                author: fields.next()?.to_owned(),
                date: fields.next()?.to_owned(),
                message: fields.next()?.to_owned(),
            })
        })
        .filter(|c| !c.hash.is_empty())
        .collect()
}

/// git's empty tree: what a first commit is compared with.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The two sides of a diff: `base` (the destination) and `head` (the source). With `topic`, the
/// diff starts at their merge base, as a pull request shows it.
fn diff_args<'a>(base: &'a str, head: &'a str, topic: bool, range: &'a mut String) -> Vec<&'a str> {
    if topic {
        *range = format!("{base}...{head}");
        vec![range.as_str()]
    } else {
        vec![base, head]
    }
}

/// The changes from `base` to `head` as a unified diff.
pub async fn diff(repository: &Path, base: &str, head: &str, topic: bool) -> Option<Vec<u8>> {
    let mut range = String::new();
    let mut args = vec!["diff", "--no-color", "--no-ext-diff"];
    args.extend(diff_args(base, head, topic, &mut range));
    output(repository, &args).await
}

/// One file's change: status (`A`, `M`, `D`), lines added and removed, old and new path.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub status: char,
    pub added: u64,
    pub removed: u64,
    pub path: String,
}

pub async fn diffstat(repository: &Path, base: &str, head: &str, topic: bool) -> Vec<FileChange> {
    let mut range = String::new();
    let sides = diff_args(base, head, topic, &mut range);
    let run = |kind: &'static str| {
        let mut args = vec!["diff", kind, "--no-renames"];
        args.extend(sides.iter().copied());
        async move { text(repository, &args).await }
    };
    let (Some(statuses), Some(numbers)) = (run("--name-status").await, run("--numstat").await)
    else {
        return Vec::new();
    };
    statuses
        .lines()
        .zip(numbers.lines())
        .filter_map(|(status, numbers)| {
            let (status, path) = status.split_once('\t')?;
            let mut counts = numbers.split('\t');
            Some(FileChange {
                status: status.chars().next()?,
                added: counts.next()?.parse().unwrap_or(0),
                removed: counts.next()?.parse().unwrap_or(0),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A file's content, streamed from `git cat-file` as it is read: answers its size and the stream.
pub async fn blob(
    repository: &Path,
    commit: &str,
    path: &str,
) -> Option<(
    u64,
    impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
)> {
    use tokio::io::AsyncReadExt;
    let object = format!("{commit}:{}", path.trim_matches('/'));
    let size = text(repository, &["cat-file", "-s", &object])
        .await?
        .parse()
        .ok()?;
    let mut child = git(repository)
        .args(["cat-file", "blob", &object])
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let chunks = futures_util::stream::unfold(Some((child, stdout)), |state| async move {
        let (child, mut stdout) = state?;
        let mut buffer = bytes::BytesMut::with_capacity(64 * 1024);
        match stdout.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some((child, stdout)))),
            Err(error) => Some((Err(error), None)),
        }
    });
    Some((size, chunks))
}

/// What a file added by the control API holds: given text, or `size` generated bytes (for
/// large-answer tests and benchmarks, without sending them in the request).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Generated { size: u64 },
}

/// Stores content as a blob; generated content is written in chunks, never held whole.
async fn store_blob(repository: &Path, content: &Content) -> Option<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = git(repository)
        .args(["hash-object", "-w", "--stdin"])
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let writing = async move {
        match content {
            Content::Text(text) => stdin.write_all(text.as_bytes()).await,
            Content::Generated { size } => {
                let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
                let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
                let mut left = *size;
                while left > 0 {
                    let take = left.min(chunk.len() as u64) as usize;
                    stdin.write_all(&chunk[..take]).await?;
                    left -= take as u64;
                }
                Ok(())
            }
        }
    };
    let (written, done) = tokio::join!(writing, child.wait_with_output());
    let done = done.ok()?;
    (written.is_ok() && done.status.success())
        .then(|| String::from_utf8_lossy(&done.stdout).trim().to_owned())
}

/// Commits `files` (path → content) on `branch`, starting from `from` (or the branch itself, if
/// it exists); answers the new commit's hash.
pub async fn commit_files(
    repository: &Path,
    branch: &str,
    from: &str,
    message: &str,
    files: &[(String, Content)],
) -> Result<String, WorldError> {
    let failed = |what: &str| WorldError::Git(format!("could not {what}"));
    if branch.starts_with('-') || branch.contains("..") || branch.is_empty() {
        return Err(WorldError::invalid("branch", "not a usable branch name"));
    }
    let parent = match resolve(repository, branch).await {
        Some(head) => head,
        None => resolve(repository, from)
            .await
            .ok_or_else(|| WorldError::invalid("from", "no such branch or commit"))?,
    };
    let index = tempfile::NamedTempFile::new().map_err(|e| WorldError::Git(e.to_string()))?;
    let with_index = |args: &[&str]| {
        let mut command = git(repository);
        command.env("GIT_INDEX_FILE", index.path()).args(args);
        command
    };
    let read = with_index(&["read-tree", &parent]).output().await;
    if !read.is_ok_and(|o| o.status.success()) {
        return Err(failed("read the parent tree"));
    }
    for (path, content) in files {
        let blob = store_blob(repository, content)
            .await
            .ok_or_else(|| failed("store a file"))?;
        let entry = format!("100644,{blob},{}", path.trim_start_matches('/'));
        let added = with_index(&["update-index", "--add", "--cacheinfo", &entry])
            .output()
            .await;
        if !added.is_ok_and(|o| o.status.success()) {
            return Err(WorldError::invalid(
                "files",
                &format!("cannot add `{path}`"),
            ));
        }
    }
    let tree = with_index(&["write-tree"])
        .output()
        .await
        .map_err(|e| WorldError::Git(e.to_string()))?;
    let tree = String::from_utf8_lossy(&tree.stdout).trim().to_owned();
    let commit = text(
        repository,
        &["commit-tree", &tree, "-p", &parent, "-m", message],
    )
    .await
    .ok_or_else(|| failed("make the commit"))?;
    let reference = format!("refs/heads/{branch}");
    text(repository, &["update-ref", &reference, &commit])
        .await
        .ok_or_else(|| failed("move the branch"))?;
    Ok(commit)
}
