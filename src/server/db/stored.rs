//! The column types of the wire enums the server stores. `netcheck-proto` knows nothing of the
//! database, so each stored enum has a twin here that sea-orm reads and writes as text; the
//! conversions are exhaustive matches, so a variant added on one side and not the other fails to
//! compile, and the test below holds the stored words to the wire's.

use netcheck_proto::api::auth::Role;
use netcheck_proto::api::checks::CheckStatus;
use netcheck_proto::check::CheckType;
use netcheck_proto::result::ResultStatus;
use sea_orm::entity::prelude::*;

/// `$name` stores `$wire` as text, one word per variant (the column's CHECK constraint admits
/// exactly these words, the serde names of `$wire`).
macro_rules! stored {
    ($(#[$doc:meta])* $name:ident for $wire:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $(#[sea_orm(string_value = $word)] $variant),+
        }

        impl $name {
            /// The wire enum this column holds.
            pub fn wire(self) -> $wire {
                self.into()
            }
        }

        impl From<$wire> for $name {
            fn from(v: $wire) -> Self {
                match v {
                    $($wire::$variant => Self::$variant),+
                }
            }
        }

        impl From<$name> for $wire {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => $wire::$variant),+
                }
            }
        }

        impl PartialEq<$wire> for $name {
            fn eq(&self, other: &$wire) -> bool {
                $wire::from(*self) == *other
            }
        }
    };
}

stored!(
    /// `users.role`.
    StoredRole for Role { Admin = "admin", User = "user" }
);
stored!(
    /// `checks.status`.
    StoredCheckStatus for CheckStatus { InProgress = "in_progress", Finished = "finished" }
);
stored!(
    /// `checks.type` and `monitors.type`.
    StoredCheckType for CheckType {
        Ping = "ping",
        Tcp = "tcp",
        Http = "http",
        Dns = "dns",
        Traceroute = "traceroute",
        Mtr = "mtr",
    }
);
stored!(
    /// `check_results.status`.
    StoredResultStatus for ResultStatus {
        Ok = "ok",
        Failed = "failed",
        Timeout = "timeout",
        Offline = "offline",
        Pending = "pending",
    }
);

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};
    use serde::Serialize;

    use super::*;

    /// What is written to a column is what the API and the agents say.
    fn check<S, W>()
    where
        S: ActiveEnum<Value = String> + Iterable + Copy + Into<W>,
        W: Serialize,
    {
        for s in S::iter() {
            let word = serde_json::to_value(s.into()).unwrap();
            assert_eq!(word, serde_json::Value::String(s.to_value()));
        }
    }

    #[test]
    fn stored_words_are_the_wire_words() {
        check::<StoredRole, Role>();
        check::<StoredCheckStatus, CheckStatus>();
        check::<StoredCheckType, CheckType>();
        check::<StoredResultStatus, ResultStatus>();
    }
}
