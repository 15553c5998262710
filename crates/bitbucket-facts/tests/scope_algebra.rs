//! Properties of the scope algebra, over random subsets of both vocabularies.

use bitbucket_facts::{ScopeSet, Vocabulary, cloud, datacenter};
use proptest::prelude::*;

fn subset(vocab: &'static Vocabulary) -> impl Strategy<Value = ScopeSet> {
    proptest::sample::subsequence(vocab.names.to_vec(), 0..=vocab.names.len())
        .prop_map(move |names| vocab.from_names(names).unwrap())
}

fn any_set() -> impl Strategy<Value = ScopeSet> {
    prop_oneof![subset(&cloud::SCOPES), subset(&datacenter::SCOPES)]
}

fn is_subset(small: &ScopeSet, big: &ScopeSet) -> bool {
    small.names().all(|name| big.contains(name))
}

proptest! {
    #[test]
    fn closure_is_idempotent_and_extensive(set in any_set()) {
        let closed = set.closure();
        prop_assert_eq!(closed.closure(), closed);
        prop_assert!(is_subset(&set, &closed));
    }

    #[test]
    fn a_set_satisfies_itself_and_what_it_implies(set in any_set()) {
        prop_assert!(set.satisfies(&set));
        prop_assert!(set.satisfies(&set.closure()));
        prop_assert!(set.missing(&set.closure()).is_empty());
    }

    #[test]
    fn minimal_keeps_the_same_power(set in any_set()) {
        let minimal = set.minimal();
        prop_assert!(is_subset(&minimal, &set));
        prop_assert_eq!(minimal.closure(), set.closure());
        // Nothing in the minimal set is implied by the rest of it.
        for name in minimal.names() {
            let rest = set.vocabulary().from_names(minimal.names().filter(|n| *n != name)).unwrap();
            prop_assert!(!rest.closure().contains(name));
        }
    }

    #[test]
    fn missing_is_exactly_what_fails(granted in subset(&cloud::SCOPES), required in subset(&cloud::SCOPES)) {
        let missing = granted.missing(&required);
        prop_assert_eq!(granted.satisfies(&required), missing.is_empty());
        prop_assert!(granted.union(&missing).satisfies(&required));
    }

    #[test]
    fn display_round_trips(set in any_set()) {
        prop_assert_eq!(set.vocabulary().parse(&set.to_string()).unwrap(), set);
    }

    #[test]
    fn form_ticks_at_least_the_implied_scopes(set in subset(&cloud::SCOPES)) {
        let ticked = cloud::form_closure(&set);
        prop_assert!(is_subset(&set.closure(), &ticked));
        let guidance = cloud::consumer_guidance(&set);
        let clicked = cloud::SCOPES.from_names(guidance.click.iter().map(|b| b.scope)).unwrap();
        prop_assert!(cloud::form_closure(&clicked).satisfies(&set));
    }
}
