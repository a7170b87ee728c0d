"""Reporting in one place: the dataset report (report.md, report.json), its page with players,
histograms and throughput per stage. Reads what stages logged; imports no stage."""
