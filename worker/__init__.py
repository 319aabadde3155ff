"""luaq's queue side: the Celery app and task, the job model, the submission client, the
results channel and job store, and the ``luaq`` CLI."""

from .app import create_app
from .client import LuaqClient, Submitted
from .job import JobRequest, JobStatus, SubmissionError
from .settings import Settings
from .store import Event, JobNotFound, JobRecord, JobStore

__all__ = [
    "Event",
    "JobNotFound",
    "JobRecord",
    "JobRequest",
    "JobStatus",
    "JobStore",
    "LuaqClient",
    "Settings",
    "SubmissionError",
    "Submitted",
    "create_app",
]
