"""Problems and the one error type: both a ValueError and a pulumi.RunError."""

from __future__ import annotations

import pulumi
import pytest

from components._validate import Problem, ValidationError, raise_for


def test_a_problem_keeps_its_value_apart_so_a_caller_can_mask_it() -> None:
    problem = Problem("cidr_block", "is not a CIDR", "s3cr3t")
    assert str(problem) == "cidr_block: 's3cr3t' is not a CIDR"
    assert problem.describe(show_value=False) == "[secret] is not a CIDR"
    assert str(Problem("az_count", "must be set")) == "az_count: must be set"


def test_the_error_names_every_problem_and_prints_without_a_traceback() -> None:
    with pytest.raises(ValidationError) as info:
        raise_for("NetworkArgs", [Problem("a", "is bad", 1), Problem("b", "is worse")])
    assert str(info.value) == "invalid NetworkArgs: a: 1 is bad; b: is worse"
    assert isinstance(info.value, ValueError) and isinstance(info.value, pulumi.RunError)
    raise_for("NetworkArgs", [])  # no problems, no error
