"""Human annotation studies (paper §4.2, Appendix D): persona role-play in the browser.

A study shows each participant one persona and a fixed number of questions, each with two
answers (y_w and y_l from the preferences stage, or any two answers from an items file); the
participant picks the answer the persona would prefer and justifies it. Served by FastAPI over
SQLAlchemy (SQLite by default, PostgreSQL too), ready for Prolific; answers export to the
human-labels schema that `persona agreement` reads.
"""

from persona_testbed.annotate.dashboard import StudyProgress, study_progress
from persona_testbed.annotate.db import Database
from persona_testbed.annotate.results import (
    LABEL_SCHEMA,
    MAJORITY_ANNOTATOR,
    labels,
    majority_labels,
    resolve_study,
    write_table,
)
from persona_testbed.annotate.sources import read_items_file, read_run_items
from persona_testbed.annotate.study import CreatedStudy, Invitation, StudyConfig, create_study
from persona_testbed.annotate.web import create_app

__all__ = [
    "LABEL_SCHEMA",
    "MAJORITY_ANNOTATOR",
    "CreatedStudy",
    "Database",
    "Invitation",
    "StudyConfig",
    "StudyProgress",
    "create_app",
    "create_study",
    "labels",
    "majority_labels",
    "read_items_file",
    "read_run_items",
    "resolve_study",
    "study_progress",
    "write_table",
]
