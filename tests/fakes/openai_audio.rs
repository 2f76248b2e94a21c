//! Placeholder: filled in by the fake's own commit.
