//! The admin console: `browser_*` drive headless Chromium (playwright-core, scenarios in
//! `tests/e2e/`); `http_*` request the pages over plain HTTP.

mod browser_scenarios;
mod http_pages;
