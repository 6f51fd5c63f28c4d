"""Weekly, monthly and quarterly community reports: JSON, CSV, SVG and PNG, on schedule or asked."""
