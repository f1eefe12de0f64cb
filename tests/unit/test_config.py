"""Settings from the environment: parsed by field type, refused when of the wrong type or out of bounds."""

import pytest

from promptopt.config import Settings


def test_the_defaults_are_valid_and_the_environment_overrides_them() -> None:
    assert Settings().checked() == Settings()
    found = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": "acme",
            "promptopt_max_page_size": " 50 ",
            "PROMPTOPT_TOPICS": '{"batch-completed": "projects/acme/topics/done"}',
            "PROMPTOPT_RATE_LIMITS": '{"jobs": {"limit": 3, "window_s": 10}}',
            "PROMPTOPT_SIGNING_KEY_FILE": "/keys/dev.json",
            "OTHER_MAX_PAGE_SIZE": "7",
        }
    )
    assert found.project_id == "acme"
    assert found.max_page_size == 50
    assert found.topics == {"batch-completed": "projects/acme/topics/done"}
    assert found.rate_limits == {"jobs": {"limit": 3, "window_s": 10}}
    assert found.signing_key_file == "/keys/dev.json"
    assert Settings().topics == {}  # the unset maps stay empty


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROMPTOPT_MAX_BODY_BYTES": "lots"}, "PROMPTOPT_MAX_BODY_BYTES is not an integer"),
        ({"PROMPTOPT_TOPICS": "[1]"}, "PROMPTOPT_TOPICS must be dict"),
        ({"PROMPTOPT_TOPICS": '{"a": 1}'}, "PROMPTOPT_TOPICS must be dict"),
        ({"PROMPTOPT_TOPICS": "{"}, "PROMPTOPT_TOPICS is not a JSON object"),
        ({"PROMPTOPT_RATE_LIMITS": '{"jobs": {"limit": "3"}}'}, "PROMPTOPT_RATE_LIMITS must be dict"),
        ({"PROMPTOPT_API_TOKEN_TTL_S": "30"}, "PROMPTOPT_API_TOKEN_TTL_S must be between 60 and 3600"),
        ({"PROMPTOPT_DATASET_MAX_ROWS": "0"}, "PROMPTOPT_DATASET_MAX_ROWS must be at least 1"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_a_value_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError, match="PROMPTOPT_MAX_PAGE_SIZE must be int"):
        Settings(max_page_size="100").checked()  # type: ignore[arg-type]
