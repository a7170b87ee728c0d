"""Reporting in one place: the dataset report (report.md, report.json), its page with players,
histograms and throughput per stage. Reads what stages logged (the stages' names handed in);
may import the records and inputs, never a stage or the registry."""
