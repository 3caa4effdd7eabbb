//! Moving in from another billing system. `mysqldump` reads the rows of a MySQL dump without
//! a MySQL server; `phpnuxbill` decides purely what PHPNuxBill's rows become; `apply` writes
//! that in one transaction, remembering each source id in `import_sources` so a re-run is
//! idempotent; `report` says what was created, already imported or skipped and why.

pub mod apply;
pub mod mysqldump;
pub mod phpnuxbill;
pub mod report;
