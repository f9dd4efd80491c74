"""train.py's command line and settings files: unknown or abbreviated options are refused with a usage line and a
one-line error; a run that fails leaves no empty output folder behind (issue 21)."""

import re

import pytest

from modeling_tvr.training import run as training_run

from .train_runs import train_in_process


class _Started(Exception):
    """Raised where a run would start working: the arguments were accepted."""


@pytest.fixture
def train_script(monkeypatch):
    """The run module, stopped where a run would start working (with its arguments)."""

    def started(train_args):
        raise _Started(train_args)

    monkeypatch.setattr(training_run, "make_accelerator", started)
    return training_run


def run_main(train_script, monkeypatch, *argv: str) -> SystemExit | _Started:
    """What `python train.py argv` does, in this process; it must stop (an exit or the start of the run)."""
    with pytest.raises((SystemExit, _Started)) as raised:
        train_in_process(monkeypatch, *argv)
    return raised.value


def assert_usage_error(exit: SystemExit | _Started, stderr: str, *named: str) -> str:
    assert isinstance(exit, SystemExit) and exit.code == 2, exit
    assert "Traceback" not in stderr and stderr.startswith("usage: ")
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("train.py: error: "), stderr
    for text in named:
        assert text in error, (text, error)
    return error


def test_unknown_flag_is_a_usage_error_suggesting_the_real_one(train_script, monkeypatch, capsys):
    exit = run_main(train_script, monkeypatch, "--batchsize", "8")
    error = assert_usage_error(exit, capsys.readouterr().err, "--batchsize", "--batch_size")
    assert error == "train.py: error: unrecognized arguments: --batchsize 8 (did you mean --batch_size?)"


def test_an_abbreviated_flag_is_refused_not_taken_for_the_longer_one(train_script, monkeypatch, capsys):
    exit = run_main(train_script, monkeypatch, "--epoch", "3")
    assert_usage_error(exit, capsys.readouterr().err, "--epoch 3", "--epochs")
    exit = run_main(train_script, monkeypatch, "--epochs", "3", "--do_ev", "false")
    assert_usage_error(exit, capsys.readouterr().err, "--do_ev")


def test_full_flags_with_underscores_or_hyphens_are_accepted(train_script, monkeypatch):
    accepted = run_main(train_script, monkeypatch, "--epochs", "3", "--batch-size", "8", "--no_do_eval")
    assert isinstance(accepted, _Started)
    train_args = accepted.args[0]
    assert (train_args.epochs, train_args.batch_size, train_args.do_eval) == (3, 8, False)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_unknown_key_in_a_settings_file_is_a_usage_error_naming_key_and_file(
    train_script, monkeypatch, capsys, tmp_path, suffix
):
    settings = tmp_path / f"run{suffix}"
    text = "epochs: 2\nbatchsize: 8\n" if suffix == ".yaml" else '{"epochs": 2, "batchsize": 8}'
    settings.write_text(text)
    exit = run_main(train_script, monkeypatch, str(settings))
    assert_usage_error(exit, capsys.readouterr().err, "'batchsize'", str(settings), "batch_size")


def test_settings_file_with_known_keys_is_accepted(train_script, monkeypatch, tmp_path):
    settings = tmp_path / "run.yaml"
    settings.write_text("epochs: 2\nbatch_size: 8\ndo_eval: false\n")
    accepted = run_main(train_script, monkeypatch, str(settings))
    assert isinstance(accepted, _Started)
    assert (accepted.args[0].epochs, accepted.args[0].batch_size, accepted.args[0].do_eval) == (2, 8, False)


def test_negative_flags_have_help_of_their_own(train_script, monkeypatch, capsys):
    exit = run_main(train_script, monkeypatch, "--help")
    assert isinstance(exit, SystemExit) and exit.code == 0
    options = capsys.readouterr().out.split("options:")[1]
    entries = {
        entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in re.split(r"\n  (?=--)", options.strip())
    }
    positive = entries["--do_eval"].rsplit("]", 1)[1].strip()
    negative = entries["--no_do_eval"].removeprefix("--no_do_eval, --no-do-eval").strip()
    assert negative and negative != positive and "--do_eval false" in negative


def test_a_run_that_fails_at_setup_leaves_no_empty_output_folder(train_script, monkeypatch, tmp_path, capsys):
    """`train.py --eval_only --init outputs/does-not-exist`: one line, and no outputs/eval/... left behind."""
    from accelerate import Accelerator

    monkeypatch.setattr(train_script, "make_accelerator", lambda train_args: Accelerator(cpu=True))
    monkeypatch.setattr(train_script, "load_data", lambda data_args, accelerator: ({"test": []}, "test"))
    monkeypatch.chdir(tmp_path)
    exit = run_main(train_script, monkeypatch, "--eval_only", "--init", "outputs/does-not-exist")
    assert isinstance(exit, SystemExit) and str(exit.code).startswith("error: ") and "does-not-exist" in exit.code
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_keeps_folders_that_existed_or_hold_files(train_script, monkeypatch, tmp_path):
    from accelerate import Accelerator

    def fails(data_args, accelerator):
        raise FileNotFoundError("no annotations in data/missing")

    monkeypatch.setattr(train_script, "make_accelerator", lambda train_args: Accelerator(cpu=True))
    monkeypatch.setattr(train_script, "load_data", fails)
    existing = tmp_path / "existing"
    existing.mkdir()
    exit = run_main(train_script, monkeypatch, "--output_dir", str(existing / "new" / "run"))
    assert isinstance(exit, SystemExit) and "no annotations" in exit.code
    assert list(tmp_path.iterdir()) == [existing] and list(existing.iterdir()) == []

    def writes_then_fails(data_args, accelerator):
        (existing / "kept" / "notes.txt").write_text("written before the failure")
        raise FileNotFoundError("no annotations in data/missing")

    monkeypatch.setattr(train_script, "load_data", writes_then_fails)
    run_main(train_script, monkeypatch, "--output_dir", str(existing / "kept"))
    assert (existing / "kept" / "notes.txt").is_file()
