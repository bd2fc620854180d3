//! End to end in a real browser: Debian's chromium, headless, driven
//! through chromedriver. These tests save the README's screenshots.

mod access;
mod allow;
mod log;
mod phone;
mod unlock;
