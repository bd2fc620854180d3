//! Bar charts drawn on the server as SVG, so the dashboard needs no script.
