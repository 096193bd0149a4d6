//! Import and export (to come).
