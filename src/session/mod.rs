//! Per-connection driver.
