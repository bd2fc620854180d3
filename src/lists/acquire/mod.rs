//! Acquiring lists: turning the config's `[[lists]]` entries into sources,
//! downloading them on their schedule into verified local copies with their
//! update state, and reporting how fresh each one is. This side may use the
//! list compiler and reader in `lists`; they never use it.

pub mod fetch;
pub mod health;
pub mod sources;
pub mod update;
