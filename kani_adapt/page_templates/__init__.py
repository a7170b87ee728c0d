"""Templates of the HTML pages (Jinja2, autoescaped) and the one place that makes untrusted
text safe for pages, Markdown files and the console (:mod:`.untrusted`)."""
