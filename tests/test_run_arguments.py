"""Arguments that used to be taken silently: refused in words, or normalised with a note, before the run
folder exists."""

from __future__ import annotations

import logging

import pytest

from bench.cli import main
from bench.config import ConfigError, RunConfig


@pytest.mark.parametrize("argv,words", [
    (["--limit", "-1"], "argument --limit: must be 1 or more, got -1"),
    (["--limit", "0"], "argument --limit: must be 1 or more, got 0"),
    (["--limit", "all"], "argument --limit: 'all' is not a whole number"),
    (["--methods", ""], "argument --methods: '' is an empty list"),
    (["--methods", " , "], "argument --methods: ' , ' is an empty list"),
    (["--qf", "abc"], "argument --qf: 'abc' is not a whole number (expected a comma-separated list such as 5,10,20)"),
    (["--qf", "10,1O"], "argument --qf: '1O' is not a whole number"),
])
def test_bad_flags_are_refused_in_words_before_the_run_folder_exists(tmp_path, capsys, argv, words):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--run-dir", str(run_dir), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and words in err and "<lambda>" not in err
    assert not run_dir.exists()


@pytest.mark.parametrize("argv,words", [
    (["--datasets", "no-such-set"], "unknown dataset 'no-such-set'"),
    (["--images", "/no/such/folder"], "image folder /no/such/folder not found"),
])
def test_a_config_naming_what_does_not_exist_creates_no_run_folder(tmp_path, capsys, argv, words):
    run_dir = tmp_path / "deep" / "run"
    assert main(["run", "--run-dir", str(run_dir), "--methods", "jpeg", "--metrics", "psnr", *argv]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "deep").exists()


@pytest.mark.parametrize("values,words", [
    ({"limit": 0}, "limit must be a whole number of images of at least 1"),
    ({"limit": -3}, "got -3"),
    ({"limit": "5"}, "got '5'"),
    ({"methods": []}, "no methods to run"),
    ({"datasets": [], "images": []}, "no images to run on"),
])
def test_config_files_are_held_to_the_same_rules(values, words):
    with pytest.raises(ConfigError, match=words):
        RunConfig.from_dict(values)


def test_a_quality_factor_given_twice_runs_once_with_a_note(caplog, monkeypatch):
    # a library that configures logging with dictConfig disables the loggers that exist by then
    monkeypatch.setattr(logging.getLogger("bench.config"), "disabled", False)
    with caplog.at_level(logging.WARNING):
        config = RunConfig.from_dict({"qf": [10, 5, 10, 5, 20]})
    assert config.qf == [10, 5, 20]
    assert "quality factors listed more than once are run once: 5, 10" in caplog.text
