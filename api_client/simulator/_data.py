"""Demo data present when a simulator starts, so the reference's examples run as written.

- ``replicate/hello-world``: versions ``5c7d5dc6…`` and ``9dcd6d78…``; output
  ``"hello " .. input.text``.
- ``stability-ai/sdxl``: version ``da77bc59…``, also reachable as ``replicate-version-id``
  (the reference's example version, which takes ``input.prompt``).
- ``black-forest-labs/flux-schnell`` (official: no version list, ``version: "hidden"``),
  ``stability-ai/sdxl``, ``nightmareai/real-esrgan``: image models.
- ``meta/meta-llama-3-8b-instruct`` and ``-70b-instruct`` (official language models),
  ``minimax/video-01`` (official video model).
- Deployment ``example-org/image-worker`` (sdxl) and the private, version-less model
  ``example-org/hello-world-tuned`` (a training destination); every simulated account is
  a member of ``example-org``.
- Prediction ``prediction-id`` (processing for an hour), training ``training-id``
  (succeeded), file ``file-id`` ("hello"), collections and the hardware list.
"""

from __future__ import annotations

from typing import Any

from ._state import Collection, Deployment, File, Job, Model, ModelKind, State, Version

HELLO_VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
HELLO_OLD_VERSION = "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426"
DEMO_VERSION_ALIAS = "replicate-version-id"
SDXL_VERSION = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"
SHARED_ORG = "example-org"
DAY = 24 * 3600.0

HARDWARE = [
    {"name": "CPU", "sku": "cpu"},
    {"name": "Nvidia T4 GPU", "sku": "gpu-t4"},
    {"name": "Nvidia L40S GPU", "sku": "gpu-l40s"},
    {"name": "Nvidia A40 GPU", "sku": "gpu-a40-small"},
    {"name": "Nvidia A40 (Large) GPU", "sku": "gpu-a40-large"},
    {"name": "Nvidia A100 (80GB) GPU", "sku": "gpu-a100-large"},
    {"name": "Nvidia H100 GPU", "sku": "gpu-h100"},
]


def input_schema(kind: ModelKind) -> dict[str, Any]:
    """The Cog ``openapi_schema`` of a model of this kind (Input and Output only)."""
    if kind == "hello":
        inputs = {"text": {"type": "string", "title": "Text", "x-order": 0}}
        required, output = ["text"], {"type": "string", "title": "Output"}
    elif kind == "text":
        inputs = {
            "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
            "system_prompt": {"type": "string", "title": "System Prompt", "x-order": 1},
            "max_tokens": {"type": "integer", "title": "Max Tokens", "x-order": 2},
        }
        required = ["prompt"]
        output = {"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator"}
    else:
        inputs = {
            "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
            "seed": {"type": "integer", "title": "Seed", "x-order": 1},
        }
        if kind == "image":
            inputs["num_outputs"] = {"type": "integer", "minimum": 1, "maximum": 4, "x-order": 2}
            output = {"type": "array", "items": {"type": "string", "format": "uri"}}
        else:
            output = {"type": "string", "format": "uri"}
        required = ["prompt"]
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": required,
                    "properties": inputs,
                },
                "Output": {"title": "Output", **output},
            }
        },
    }


def demo_state(now: float) -> State:
    state = State(hardware=[dict(h) for h in HARDWARE])
    for model in _models(now):
        state.add_model(model)
    state.deployments["example-org/image-worker"] = Deployment(
        owner=SHARED_ORG,
        name="image-worker",
        model="stability-ai/sdxl",
        version=SDXL_VERSION,
        hardware="gpu-t4",
        min_instances=0,
        max_instances=3,
        created_at=now - 30 * DAY,
        created_by=SHARED_ORG,
    )
    for collection in _collections():
        state.collections[collection.slug] = collection
    state.jobs["prediction-id"] = _demo_prediction(now)
    state.jobs["training-id"] = Job(
        id="training-id",
        kind="training",
        owner=None,
        model="replicate/hello-world",
        model_kind="hello",
        version=HELLO_VERSION,
        input={"train_data": "https://example.com/data.zip"},
        created_at=now - 2 * 3600.0,
        duration=600.0,
        destination="example-org/hello-world-tuned",
    )
    state.files["file-id"] = File(
        id="file-id",
        owner=None,
        name="hello.txt",
        content_type="text/plain",
        content=b"hello",
        metadata={"source": "luaq-sim"},
        # Files expire after a day; this one was made just now.
        created_at=now,
    )
    return state


def _demo_prediction(now: float) -> Job:
    # Created 15 minutes ago and runs for an hour (processing after its first 12
    # minutes): still "processing" when the reference's examples poll or cancel it.
    return Job(
        id="prediction-id",
        kind="prediction",
        owner=None,
        model="stability-ai/sdxl",
        model_kind="image",
        version=SDXL_VERSION,
        input={"prompt": "a quiet forest trail"},
        created_at=now - 900.0,
        duration=3600.0,
    )


def _version(version_id: str, kind: ModelKind, created_at: float, *aliases: str) -> Version:
    return Version(version_id, created_at, "0.9.4", input_schema(kind), tuple(aliases))


def _models(now: float) -> list[Model]:
    old = now - 400 * DAY
    return [
        Model(
            owner="replicate",
            name="hello-world",
            description="A tiny model that says hello",
            kind="hello",
            created_at=old,
            run_count=5681081,
            github_url="https://github.com/replicate/cog-examples",
            readme="# Hello World\n\nA tiny model that says hello: `hello <text>`.\n",
            versions=[
                _version(HELLO_VERSION, "hello", old + 10 * DAY),
                _version(HELLO_OLD_VERSION, "hello", old),
            ],
        ),
        Model(
            owner="black-forest-labs",
            name="flux-schnell",
            description="The fastest image generation model tailored for local development and personal use",
            kind="image",
            created_at=now - 300 * DAY,
            official=True,
            run_count=412000000,
            license_url="https://github.com/black-forest-labs/flux/blob/main/model_licenses/LICENSE-FLUX1-schnell",
            readme="# FLUX.1 [schnell]\n\nA 12 billion parameter text-to-image model.\n",
            versions=[
                _version(
                    "c846a69991daf4c0e5d016514849d14ee5b2e6846ce6b9d6f21369e564cfe51e",
                    "image",
                    now - 200 * DAY,
                )
            ],
        ),
        Model(
            owner="stability-ai",
            name="sdxl",
            description="A text-to-image generative AI model that creates beautiful images",
            kind="image",
            created_at=now - 700 * DAY,
            run_count=80000000,
            github_url="https://github.com/Stability-AI/generative-models",
            versions=[_version(SDXL_VERSION, "image", now - 600 * DAY, DEMO_VERSION_ALIAS)],
        ),
        Model(
            owner="nightmareai",
            name="real-esrgan",
            description="Real-ESRGAN with optional face correction and adjustable upscale",
            kind="image",
            created_at=now - 900 * DAY,
            run_count=60000000,
            versions=[
                _version(
                    "f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa",
                    "image",
                    now - 500 * DAY,
                )
            ],
        ),
        Model(
            owner="meta",
            name="meta-llama-3-8b-instruct",
            description="An 8 billion parameter language model from Meta, fine tuned for chat",
            kind="text",
            created_at=now - 350 * DAY,
            official=True,
            run_count=300000000,
            versions=[
                _version(
                    "5a6809ca6288247d06daf6365557e5e429063f32a21146b2a807c682652136b8",
                    "text",
                    now - 340 * DAY,
                )
            ],
        ),
        Model(
            owner="meta",
            name="meta-llama-3-70b-instruct",
            description="A 70 billion parameter language model from Meta, fine tuned for chat",
            kind="text",
            created_at=now - 349 * DAY,
            official=True,
            run_count=150000000,
            versions=[
                _version(
                    "fbfb20b472b2f3bdd101412a9f70a0ed4fc0ced78a77ff00970ee7a2383c575d",
                    "text",
                    now - 339 * DAY,
                )
            ],
        ),
        Model(
            owner=SHARED_ORG,
            name="hello-world-tuned",
            description="A private destination for trainings of replicate/hello-world",
            kind="hello",
            created_at=now - 10 * DAY,
            visibility="private",
        ),
        Model(
            owner="minimax",
            name="video-01",
            description="Generate 6s videos with prompts or images",
            kind="video",
            created_at=now - 100 * DAY,
            official=True,
            run_count=1000000,
            versions=[
                _version(
                    "c8bcc4751328608bb75043b3af7bed4eabcf1a6c0a478d50a4cf57fa04bd5101",
                    "video",
                    now - 90 * DAY,
                )
            ],
        ),
    ]


def _collections() -> list[Collection]:
    return [
        Collection(
            slug="text-to-image",
            name="Text to image",
            description="Models that generate images from text prompts",
            full_description="## Overview\n\nGenerate images from a text prompt.\n",
            models=["black-forest-labs/flux-schnell", "stability-ai/sdxl"],
        ),
        Collection(
            slug="super-resolution",
            name="Super resolution",
            description="Upscaling models that create high-quality images from low-quality images.",
            models=["nightmareai/real-esrgan"],
        ),
        Collection(
            slug="language-models",
            name="Language models",
            description="Models that understand and generate text",
            models=["meta/meta-llama-3-8b-instruct", "meta/meta-llama-3-70b-instruct"],
        ),
        Collection(
            slug="official",
            name="Official models",
            description="Official models are always on, maintained, and have predictable pricing.",
            models=[
                "black-forest-labs/flux-schnell",
                "meta/meta-llama-3-8b-instruct",
                "meta/meta-llama-3-70b-instruct",
                "minimax/video-01",
            ],
        ),
    ]
