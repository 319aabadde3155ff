"""Where create_file's content comes from: bytes, data: URLs, attachments, allowed paths."""

from __future__ import annotations

import os

import pytest

from api_client import MAX_UPLOAD_BYTES, ArgumentError, FileSource, ReplicateProvider


def resolve(source: FileSource, content, **fields):
    return source.resolve({"content": content, **fields})


def test_plain_strings_are_the_bytes_themselves():
    """A string that is neither a data URL, an attachment nor a path is uploaded as is."""
    upload = resolve(FileSource(), "hello")
    assert (upload.content, upload.filename, upload.content_type, upload.metadata) == (
        b"hello",
        "upload",
        "application/octet-stream",
        {},
    )


def test_binary_bytes_are_kept_exactly():
    """Non-UTF-8 bytes (a PNG header) pass through untouched."""
    assert resolve(FileSource(), b"\x89PNG\r\n\x1a\n\x00").content == b"\x89PNG\r\n\x1a\n\x00"


def test_base64_data_url_is_decoded_with_its_type():
    """A base64 data: URL gives its bytes, and its MIME type becomes the default type."""
    upload = resolve(FileSource(), "data:image/png;base64,iVBORw0KGgo=")
    assert upload.content == b"\x89PNG\r\n\x1a\n"
    assert upload.content_type == "image/png"


def test_percent_encoded_data_url_and_explicit_type():
    """A non-base64 data: URL is percent-decoded; an explicit type wins."""
    upload = resolve(FileSource(), "data:text/plain,hello%20world", type="text/markdown")
    assert (upload.content, upload.content_type) == (b"hello world", "text/markdown")


def test_attachment_names_give_the_attached_bytes():
    """The name of an attached file uploads that file, named after it."""
    source = FileSource(attachments={"photo.png": b"PNGDATA"})
    upload = resolve(source, "photo.png", metadata={"source": "agent"})
    assert (upload.content, upload.filename, upload.content_type) == (
        b"PNGDATA",
        "photo.png",
        "image/png",
    )
    assert upload.metadata == {"source": "agent"}


def test_host_paths_are_refused_without_allow_read(tmp_path):
    """A path-like string is never read unless --allow-read allows its directory."""
    target = tmp_path / "x.png"
    target.write_bytes(b"secret")
    with pytest.raises(ArgumentError) as caught:
        resolve(FileSource(), str(target))
    assert str(caught.value) == (
        f"content '{target}' looks like a path on the host; luaq never reads host files "
        "unless `luaq run --allow-read DIR` allows that directory. Pass the bytes themselves, "
        "a data: URL, or attach the file at submission (luaq submit --file NAME=PATH)"
    )


@pytest.mark.parametrize("text", ["./notes.txt", "../notes.txt", "~/notes.txt"])
def test_relative_and_home_paths_count_as_paths(text):
    """./, ../ and ~ prefixes are treated as host paths too."""
    with pytest.raises(ArgumentError, match="looks like a path on the host"):
        resolve(FileSource(), text)


def test_a_path_inside_an_allowed_directory_is_read(tmp_path):
    """With the directory allowed, the file is read and named after itself."""
    (tmp_path / "doc.txt").write_text("contents")
    upload = resolve(FileSource(allow_read=[tmp_path]), str(tmp_path / "doc.txt"))
    assert (upload.content, upload.filename, upload.content_type) == (
        b"contents",
        "doc.txt",
        "text/plain",
    )


def test_a_path_outside_the_allowed_directories_is_refused(tmp_path):
    """A file beside, not inside, the allowed directory stays unread."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    source = FileSource(allow_read=[allowed])
    with pytest.raises(ArgumentError, match="outside the directories allowed"):
        resolve(source, str(tmp_path / "secret.txt"))
    with pytest.raises(ArgumentError, match="outside the directories allowed"):
        resolve(source, str(allowed / ".." / "secret.txt"))


def test_a_symlink_escaping_the_allowed_directory_is_refused(tmp_path):
    """A link inside the allowed directory pointing outside it is not followed out."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", allowed / "link.txt")
    with pytest.raises(ArgumentError, match="outside the directories allowed"):
        resolve(FileSource(allow_read=[allowed]), str(allowed / "link.txt"))


def test_a_missing_allowed_file_is_an_argument_error(tmp_path):
    """An allowed but absent path says it cannot be read."""
    with pytest.raises(ArgumentError, match="cannot be read"):
        resolve(FileSource(allow_read=[tmp_path]), str(tmp_path / "missing.txt"))


def test_content_over_the_limit_is_refused_before_upload():
    """More than the limit is an ArgumentError; exactly the limit is fine."""
    source = FileSource(max_bytes=10)
    assert len(resolve(source, b"x" * 10).content) == 10
    with pytest.raises(ArgumentError, match="11 bytes; files must be less than 10 bytes"):
        resolve(source, b"x" * 11)


def test_files_over_100_mib_are_refused_without_reading_them(tmp_path):
    """A (sparse) file over 100 MiB is refused from its size alone."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ArgumentError, match="files must be less than 100 MiB"):
        resolve(FileSource(allow_read=[tmp_path]), str(big))


def test_multiline_strings_are_content_not_paths():
    """Text that starts with a slash but spans lines is uploaded, not read."""
    assert resolve(FileSource(), "/* a comment\n */").content == b"/* a comment\n */"


def test_provider_uploads_an_attachment_to_the_simulator(accounts, transport, simulator):
    """Through the provider, an attachment's bytes end up in the simulator's file."""
    with ReplicateProvider(accounts, transport=transport, attachments={"cat.jpg": b"JPEGDATA"}) as provider:
        value = provider.call("create_file", "default", {"body": {"content": "cat.jpg"}}).value
    stored = simulator.state.files[value["id"]]
    assert (stored.content, stored.name, stored.content_type) == (
        b"JPEGDATA",
        "cat.jpg",
        "image/jpeg",
    )


def test_provider_refuses_host_paths_by_default(provider, tmp_path):
    """The worker's provider never reads its own filesystem for a script."""
    (tmp_path / "x").write_text("x")
    with pytest.raises(ArgumentError, match="looks like a path on the host"):
        provider.call("create_file", "default", {"content": str(tmp_path / "x")})
