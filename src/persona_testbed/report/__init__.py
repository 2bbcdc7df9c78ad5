"""The HTML report of a run: every section's figures and tables, inline, in one file."""

from persona_testbed.report.html import (
    REPORT_PATH,
    SECTIONS,
    build_sections,
    run_facts,
    write_report,
)

__all__ = ["REPORT_PATH", "SECTIONS", "build_sections", "run_facts", "write_report"]
