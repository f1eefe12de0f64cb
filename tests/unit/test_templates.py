import pytest

from promptopt.prompts.templates import TemplateError, placeholders, render


def test_placeholders_in_order_without_duplicates() -> None:
    assert placeholders("{question} and {context}, again {question}; {{literal}}") == ["question", "context"]


@pytest.mark.parametrize("bad", ["{a.b}", "{a[0]}", "{a!r}", "{a:>5}", "{}", "{0}", "{unclosed", "closed}"])
def test_refuses_anything_but_plain_names(bad: str) -> None:
    with pytest.raises(TemplateError):
        placeholders(bad)


def test_render_fills_and_reports_missing() -> None:
    assert render("Q: {input} ({{x}})", {"input": "2+2", "extra": "ignored"}) == "Q: 2+2 ({x})"
    with pytest.raises(TemplateError, match="input"):
        render("Q: {input}", {})


def test_render_does_not_interpret_values() -> None:
    assert render("{input}", {"input": "{__class__}"}) == "{__class__}"
