"""The profile registry: one list of names, and the messages and commands that ask it by capability."""

from __future__ import annotations

from typing import get_args

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError, PipelineError
from pipeline.profile_names import PROFILE_NAMES, listed
from pipeline.profiles import profile_type, profile_type_that, profiles_that
from pipeline.profiles.faces import FacesProfile
from pipeline.profiles.plvm import PlvmProfile


def test_settings_and_the_cli_read_one_list_of_names() -> None:
    assert get_args(Settings.model_fields["profile"].annotation) == PROFILE_NAMES
    assert listed() == "faces, plvm or tiny" and listed(("faces",)) == "faces"
    with pytest.raises((ConfigError, ValueError)):
        Settings(profile="bogus")  # type: ignore[arg-type]  # the wrong value is the point


def test_messages_name_the_profiles_that_have_a_capability() -> None:
    both = "the plvm profile (--profile plvm / PIPELINE_PROFILE=plvm) or the tiny test profile"
    assert profiles_that("answers_questions") == both and profiles_that("trainable") == both
    assert profiles_that("needs_pixels_to_describe") == both  # faces describes from names alone


def test_commands_that_work_whatever_profile_ask_the_first_trainable_one() -> None:
    assert profile_type_that("trainable", "faces") is PlvmProfile
    assert profile_type_that("trainable", "tiny") is PlvmProfile
    assert profile_type_that("needs_pixels_to_describe", "faces") is PlvmProfile
    assert profile_type("faces") is FacesProfile


def test_a_profile_without_evidence_or_answers_gives_no_scorer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, profile="faces")
    with pytest.raises(PipelineError, match="no recognition evidence"):
        FacesProfile.recognition_scorer(settings)
    with pytest.raises(PipelineError, match="cannot answer questions"):
        FacesProfile.answerer(settings)
    with pytest.raises(PipelineError, match="no trainable part"):
        FacesProfile.training_config(steps=1)
    assert FacesProfile.pull_weights(settings) == ([], "") and FacesProfile.training_precisions() == ()
