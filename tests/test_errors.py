"""The platform's error messages: templates of their values, so that each reaches the catalog and a person reads
it in their language, while English and the values stay exactly as they were."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

import aitip
from aitip import errors
from aitip.errors import Conflict, InvalidInput, InvalidValue, NotFound, Phrase
from aitip.i18n import N_
from aitip.validation_messages import REASONS, reason, refusal

PACKAGE = Path(aitip.__file__).resolve().parent


def every_error_class() -> set[str]:
    """The names of InvalidValue, AitipError and every class the package derives from them (read from the source:
    some modules, such as a hub configuration file, only run inside their host)."""
    bases: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(base.id for base in node.bases if isinstance(base, ast.Name))
    found = {"InvalidValue", "AitipError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def test_every_error_class_is_a_keyword_of_the_extraction() -> None:
    assert every_error_class() == set(errors.MESSAGE_KEYWORDS)


def messages_hidden_from_extraction(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Error messages the catalog cannot hold: an f-string or a concatenation (one text per value), and a
    choice between literals that are not each marked (Babel would join them into one)."""
    found = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                and node.func.id in errors.MESSAGE_KEYWORDS):
            continue
        first = node.args[0]
        hidden = isinstance(first, ast.JoinedStr) or (
            isinstance(first, ast.BinOp) and any(isinstance(side, ast.Constant | ast.JoinedStr)
                                                 for side in (first.left, first.right))) or (
            isinstance(first, ast.IfExp) and any(isinstance(branch, ast.Constant | ast.JoinedStr)
                                                 for branch in (first.body, first.orelse)))
        if hidden:
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_error_message_is_built_where_the_catalog_cannot_see_it(tmp_path: Path) -> None:
    hidden = [place for path in sorted(PACKAGE.rglob("*.py")) for place in messages_hidden_from_extraction(path)]
    assert hidden == []
    (tmp_path / "service.py").write_text('raise NotFound(f"no job {job}")\nraise Conflict("a" if x else "b")\n'
                                         'raise InvalidInput("known: " + names)\nraise NotFound("job {job}", job=1)\n')
    assert messages_hidden_from_extraction(tmp_path / "service.py", tmp_path.parent) == [
        f"{tmp_path.name}/service.py:1", f"{tmp_path.name}/service.py:2", f"{tmp_path.name}/service.py:3"]


def test_a_message_is_its_template_filled_in_english_and_translated_in_chinese() -> None:
    error = NotFound("sweep {sweep_id} does not exist or is not in a project you belong to", sweep_id=7)
    assert error.message == str(error) == "sweep 7 does not exist or is not in a project you belong to"
    assert error.message_in("en") == error.message_in(None) == error.message_in("fr") == error.message
    chinese = error.message_in("zh-CN")
    assert "7" in chinese and "超参搜索" in chinese and "sweep" not in chinese
    assert error.to_json("zh_CN") == {"error": {"code": "not_found", "message": chinese, "detail": None}}
    assert error.to_json() == {"error": {"code": "not_found", "message": error.message, "detail": None}}


def test_values_keep_their_formatting_and_a_message_without_values_is_not_formatted() -> None:
    error = InvalidInput("metric {name!r} is {value:.2f}, not {kind}", name="acc", value=0.5, kind="x")
    assert error.message == "metric 'acc' is 0.50, not x"
    assert InvalidInput("braces {stay} as written").message == "braces {stay} as written"
    unknown = Conflict("a message no catalog knows: {thing}", thing=3)
    assert unknown.message_in("zh_CN") == "a message no catalog knows: 3"


def test_a_phrase_among_the_values_is_translated_too() -> None:
    error = InvalidInput("invalid {where}: {field}: {reason}", where=Phrase(N_("request body")), field="name",
                         reason=Phrase.worded("Field required", "Field required"))
    assert error.message == "invalid request body: name: Field required"
    chinese = error.message_in("zh_CN")
    assert "name" in chinese and "request body" not in chinese and "Field required" not in chinese


class Project(BaseModel):
    name: str = Field(min_length=3, max_length=5, pattern="^[a-z]+$")
    size: int = Field(ge=1)
    kind: str


@pytest.mark.parametrize("data", [{"name": "a", "size": 1, "kind": "x"}, {"name": "abc", "size": 0, "kind": "x"},
                                  {"name": "ABC", "size": 1, "kind": "x"}, {"name": "abc", "size": "many"},
                                  {"name": "abcdefg", "size": 1, "kind": "x", "extra": 1}])
def test_validation_errors_read_as_pydantic_said_in_english_and_in_chinese_otherwise(data: dict) -> None:
    with pytest.raises(ValidationError) as caught:
        Project.model_validate(data)
    first = caught.value.errors(include_url=False)[0]
    assert first["type"] in REASONS
    refused = refusal(caught.value, N_("request body"), unnamed="(body)")
    count = len(caught.value.errors())
    more = f" (and {count - 1} more)" if count > 1 else ""
    assert refused.message == f"invalid request body: {'.'.join(map(str, first['loc']))}: {first['msg']}{more}"
    assert [item["message"] for item in refused.detail] == [item["msg"] for item in caught.value.errors()]
    chinese = refused.message_in("zh_CN")
    assert chinese != refused.message and "should" not in chinese and "request body" not in chinese
    assert str(reason(first)) == first["msg"]
    for name, value in (first.get("ctx") or {}).items():
        assert str(value) in chinese, name


def test_a_models_own_validator_is_translated_through_its_phrase() -> None:
    from aitip.projects.models import MemberAdd
    from aitip.serving.models import TrafficSet

    with pytest.raises(ValidationError) as caught:
        MemberAdd.model_validate_json('{"role": "viewer"}')
    refused = refusal(caught.value, N_("request body"), unnamed="(body)")
    assert refused.message == "invalid request body: (body): Value error, give exactly one of 'user' or 'group'"
    chinese = refused.message_in("zh_CN")
    assert "'user'" in chinese and "give" not in chinese and "Value error" not in chinese
    with pytest.raises(ValidationError) as caught:
        TrafficSet.model_validate_json('{"weights": {"1": 70, "2": 20}}')
    refused = refusal(caught.value, N_("request body"), unnamed="(body)")
    assert refused.message.endswith("the weights sum to 90; they must sum to 100")
    assert "90" in refused.message_in("zh_CN") and "must" not in refused.message_in("zh_CN")


def test_a_validators_refusal_reads_as_its_template_and_keeps_a_phrase_made_elsewhere() -> None:
    refused = InvalidValue("the weights sum to {total}; they must sum to 100", total=90)
    assert isinstance(refused, ValueError) and str(refused) == "the weights sum to 90; they must sum to 100"
    assert "90" in refused.phrase.in_language("zh_CN") and "must" not in refused.phrase.in_language("zh_CN")
    made = Phrase(N_("a dataset name must not be empty"))
    assert InvalidValue(made).phrase is made and str(InvalidValue(made)) == "a dataset name must not be empty"


def test_a_word_a_message_chooses_is_said_in_the_readers_language() -> None:
    """Where a message names what it is about (a model version, a job's action), the word is a phrase: a
    Chinese reader does not meet English nouns and verbs in the middle of a sentence."""
    from types import SimpleNamespace

    from aitip.identity.roles import Role
    from aitip.jobs.service import JobService
    from aitip.operations.parameters import PATH_PARAMETERS

    with pytest.raises(NotFound) as caught:
        PATH_PARAMETERS["model_version"].convert("0")
    assert caught.value.message == "model versions start at 1"
    assert caught.value.message_in("zh_CN") == "模型版本从 1 开始"

    job = SimpleNamespace(owner="carol", project=SimpleNamespace(name="alpha"), id=7)
    with pytest.raises(errors.PermissionDenied) as caught:
        JobService._owner_or_maintainer(SimpleNamespace(name="erin"), job, Role.developer, N_("retry"))
    assert caught.value.message == ("only the job's owner (carol) or a maintainer of 'alpha' may retry job 7; "
                                    "you are developer")
    assert "重试作业 7" in caught.value.message_in("zh_CN") and "retry" not in caught.value.message_in("zh_CN")
    assert caught.value.message_in("zh_CN").endswith("你的角色是开发者")


@pytest.mark.parametrize("name", ["template", "english", "message", "values"])
def test_any_name_can_be_a_value_of_a_message(name: str) -> None:
    """A message's values are its own: none is taken for a parameter of the error or the phrase."""
    error = InvalidInput("use the {%s} one" % name, **{name: "black_box"})
    assert error.message == "use the black_box one" and error.phrase.values == {name: "black_box"}
    assert str(InvalidValue("use the {%s} one" % name, **{name: "x"})) == "use the x one"
    assert Phrase("use the {%s} one" % name, **{name: "y"}).english == "use the y one"


def test_a_list_of_phrases_is_joined_as_the_language_joins_lists() -> None:
    parts = [Phrase(N_("{name} ({type})"), name="width", type="double"), "count"]
    assert str(errors.Listed(parts)) == "width (double), count"
    assert errors.Listed(parts).in_language("zh_CN") == "width（double）、count"
    assert errors.Listed(parts, errors.CLAUSE_SEPARATOR).in_language("zh_CN") == "width（double）；count"
    assert errors.Listed(parts, errors.CLAUSE_SEPARATOR).in_language("en") == "width (double); count"
