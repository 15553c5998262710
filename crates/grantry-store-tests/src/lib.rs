//! The `Store` contract, run unchanged against every backend.
//!
//! A backend's test file calls [`store_contract!`] with an async expression that makes a fresh,
//! empty, migrated store and something to keep alive while it is used (a temporary directory, a
//! throwaway database):
//!
//! ```ignore
//! grantry_store_tests::store_contract!(async { let dir = tempdir(); (dir, Arc::new(open(..)) as Arc<dyn Store>) });
//! ```

mod access;
mod connections;
mod events;
mod fixtures;
mod leases;
mod sealing;
mod sessions;
mod webhooks;

pub use access::*;
pub use connections::*;
pub use events::*;
pub use fixtures::*;
pub use leases::*;
pub use sealing::*;
pub use sessions::*;
pub use webhooks::*;

/// Generates one `#[tokio::test]` per contract test for a backend.
#[macro_export]
macro_rules! store_contract {
    ($make:expr) => {
        $crate::store_contract!(@tests $make;
            profiles_round_trip, profile_names_are_unique, deleting_a_profile_cascades,
            connections_round_trip, one_connection_per_account_end_user_and_profile, connections_filter_and_page,
            replacing_a_connection_bumps_its_version, leases_are_exclusive_and_expire,
                        token_writes_are_guarded_by_version_and_lease, token_writes_at_once_keep_their_own_guards, kept_tokens_are_written_by_version_alone, outcomes_release_the_lease, outcomes_about_a_replaced_row_are_left_out,
            claiming_shares_out_due_connections, abandoned_leases_are_claimed_first, handed_back_leases_leave_the_row_due, fixing_a_profile_retries_its_failing_connections, sessions_open_and_complete_once, held_credentials_are_taken_once_and_expire,
            api_keys_and_admins, admin_passwords_change_and_admins_leave, console_sessions_and_settings, events_filter_and_page_newest_first, resealing_replaces_only_unchanged_values, sealed_values_name_their_keys,
            sealed_bytes_and_long_tokens_round_trip, announcements_reach_the_endpoints_that_want_them,
            deliveries_are_claimed_once_and_in_order, a_profile_turning_misconfigured_is_announced_once,
            expiring_credentials_are_found_and_warned_once);
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_keep, store) = $make.await;
                $crate::$name(&*store).await;
            }
        )*
    };
}
