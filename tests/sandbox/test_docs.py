"""docs.read / list / search and lua_read_doc: pages generated from the providers."""

from __future__ import annotations


def test_provider_page_is_the_overview(run, provider):
    """docs.read("<provider>") is the provider's overview, with or without a prefix."""
    envelope = run(
        'return docs.read("replicate"), docs.read("integrations.replicate"), lua_read_doc("integrations.replicate")'
    )
    assert envelope.result == [provider.overview_doc()] * 3


def test_function_page_answers_to_every_name(run):
    """docs.read("<provider>.<any name>") is that function's doc."""
    envelope = run(
        'return docs.read("replicate.get_account") == docs.read("replicate.replicate_get_account"),'
        ' docs.read("integrations.replicate.get_authenticated_account")'
    )
    assert envelope.result == [
        True,
        "replicate.get_authenticated_account\nReturns the account behind the token.",
    ]


def test_function_without_doc_text_gets_a_generated_page(run):
    """A function whose provider gave no doc still has a page from its spec."""
    page = run('return docs.read("replicate.create_prediction")').result[0]
    assert page.startswith("replicate.create_prediction - Create a prediction")
    assert "Operation: write" in page
    assert '"input"' in page


def test_unknown_page_is_a_message_with_suggestions_not_an_error(run):
    """An unknown page returns a "No docs found" string with close page names."""
    envelope = run('return docs.read("replicate.get_acount")')
    assert envelope.status == "succeeded"
    message = envelope.result[0]
    assert message.startswith("No docs found for 'replicate.get_acount'. Did you mean: ")
    assert "replicate.get_account" in message


def test_list_names_every_page(run):
    """docs.list() lists the provider page and one page per function, one per line."""
    assert run("return docs.list()").result == [
        "replicate\nreplicate.get_authenticated_account\nreplicate.get_prediction\n"
        "replicate.create_prediction\nreplicate.list_predictions"
    ]


def test_search_ranks_matching_functions(run):
    """docs.search returns `<provider>.<name> - <title>` lines, best match first."""
    lines = run('return docs.search("get prediction")').result[0].splitlines()
    assert lines[0] == "replicate.get_prediction - Get a prediction"
    assert "replicate.list_predictions - List predictions" in lines
    assert run('return docs.search("zzzz")').result == ["No docs found for 'zzzz'."]
