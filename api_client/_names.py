"""The three Lua names of an operation: long (derived from the summary), short, slug.

The long name reproduces the reference runner's ``deriveFunctionName``: lower-case and
snake-case the summary, drop stop words, and drop every word that contains the app name
or is contained in it. A possessive "'s" goes too ("Get a model's README" ->
``get_model_readme``), as in the names the reference publishes.
"""

from __future__ import annotations

import re

APP_NAME = "replicate"
STOP_WORDS = frozenset({"on", "of", "for", "in", "to", "the", "a", "an"})

# The documented names from the reference's "Tool Families" list, keyed by operationId.
SHORT_NAMES: dict[str, str] = {
    "account.get": "get_account",
    "collections.list": "list_collections",
    "collections.get": "get_collection",
    "deployments.list": "list_deployments",
    "deployments.create": "create_deployment",
    "deployments.get": "get_deployment",
    "deployments.update": "update_deployment",
    "deployments.delete": "delete_deployment",
    "deployments.predictions.create": "create_deployment_prediction",
    "files.list": "list_files",
    "files.create": "create_file",
    "files.get": "get_file",
    "files.delete": "delete_file",
    "files.download": "download_file",
    "hardware.list": "list_hardware",
    "models.list": "list_models",
    "models.create": "create_model",
    "models.search": "search_models",
    "models.get": "get_model",
    "models.update": "update_model",
    "models.delete": "delete_model",
    "models.examples.list": "list_model_examples",
    "models.predictions.create": "create_model_prediction",
    "models.readme.get": "get_model_readme",
    "models.versions.list": "list_model_versions",
    "models.versions.get": "get_model_version",
    "models.versions.delete": "delete_model_version",
    "predictions.list": "list_predictions",
    "predictions.create": "create_prediction",
    "predictions.get": "get_prediction",
    "predictions.cancel": "cancel_prediction",
    "search": "search",
    "trainings.list": "list_trainings",
    "trainings.create": "create_training",
    "trainings.get": "get_training",
    "trainings.cancel": "cancel_training",
    "webhooks.default.secret.get": "get_default_webhook_secret",
}


def derive_long_name(summary: str, app: str = APP_NAME) -> str:
    """The long Lua name the reference runner derives from an operation summary."""
    text = re.sub(r"['\u2019]s\b", "", summary.lower())
    words = re.findall(r"[a-z0-9]+", text)
    kept = [w for w in words if w not in STOP_WORDS and app not in w and w not in app]
    return "_".join(kept)


def slug_for(short_name: str, app: str = APP_NAME) -> str:
    """The full tool slug, e.g. ``replicate_get_account``."""
    return f"{app}_{short_name}"


def header_spellings(name: str) -> tuple[str, ...]:
    """Accepted argument spellings of a header parameter: exact, snake_case, lower-case."""
    spellings = (name, name.lower().replace("-", "_"), name.lower())
    return tuple(dict.fromkeys(spellings))
