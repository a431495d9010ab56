"""Bad arguments and impossible states raise the right exceptions with Carina's messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import carina
from helpers import run_script


def test_unknown_zone_is_a_value_error_with_close_matches() -> None:
    with pytest.raises(ValueError, match=r'unknown carbon zone "DX"; did you mean .*DE'):
        carina.Run("z", carbon_zone="DX")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": "some"}, "invalid setting `steps`"),
        ({"scope": "galaxy"}, "invalid setting `scope`"),
        ({"sample_interval": 0.0}, "invalid setting `sample_interval`"),
        ({"sample_interval": float("nan")}, "invalid setting `sample_interval`"),
        ({"sample_interval": 1e30}, "invalid setting `sample_interval`"),
        ({"buffer_capacity": 1 << 40}, "invalid setting `buffer_capacity`"),
        ({"constant_watts": -1.0}, "invalid setting `constant_watts`"),
        ({"carbon_factor": float("inf")}, "invalid setting `carbon_factor`"),
        ({"pue": 0.5}, "invalid setting `pue`"),
        ({"model_watts": (10.0, 5.0)}, "invalid setting `model_watts`"),
        ({"buffer_capacity": 0}, "invalid setting `buffer_capacity`"),
        ({"carbon_zone": "DE", "carbon_factor": 1.0}, "at most one of"),
    ],
)
def test_bad_settings_are_value_errors(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        carina.Run("bad", **settings)


def test_bad_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="on_step_exit must be a callable"):
        carina.Run("t", on_step_exit=3)
    with pytest.raises(TypeError):
        carina.Run("t", sample_interval="fast")
    with pytest.raises(TypeError, match="a step name must be a str"):
        carina.step(3)
    with pytest.raises(ValueError, match="job must be a non-empty name"):
        carina.Run(" ")


def test_bad_items() -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        carina.step("x", items=-1)
    with pytest.raises(TypeError, match="items must be an int, got float"):
        carina.step("x", items=1.5)
    with carina.step("x") as s:
        with pytest.raises(ValueError):
            s.add_items(-2)
        with pytest.raises(TypeError):
            s.set_items("3")
    with pytest.raises(ValueError):

        @carina.step("d", items=-4)
        def f() -> None:
            pass


def test_a_callable_items_outside_a_decorator_is_refused(run_in) -> None:
    run_in()
    with pytest.raises(TypeError, match="callable items= is for decorated functions"):
        with carina.step("x", items=lambda: 3):
            pass


def test_a_nameless_step_cannot_be_a_context_manager() -> None:
    with pytest.raises(TypeError, match="needs a name"):
        with carina.step():
            pass


def test_an_unwritable_directory_is_an_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot create the run file") as err:
        carina.Run("w", blocker / "runs", constant_watts=1.0).start()
    assert isinstance(err.value, NotADirectoryError)
    assert not carina.is_recording()


def test_a_missing_intensity_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cannot read"):
        carina.Run("c", tmp_path, carbon_intensity_csv=tmp_path / "none.csv").start()


def test_a_malformed_intensity_file_is_a_value_error(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamp,g_per_kwh\nyesterday,12\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: field `timestamp`"):
        carina.Run("c", tmp_path, carbon_intensity_csv=csv).start()


def test_a_second_run_in_the_process_is_a_runtime_error(run_in, tmp_path: Path) -> None:
    run_in()
    with pytest.raises(RuntimeError, match="already active"):
        carina.Run("second", tmp_path, constant_watts=1.0).start()
    with pytest.raises(RuntimeError, match="already active"):
        with carina.Run("third", tmp_path, constant_watts=1.0):
            pass


def test_a_bad_environment_variable_is_a_value_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINA_DISABLE", "perhaps")
    with pytest.raises(ValueError, match="CARINA_DISABLE"):
        carina.Run("e", tmp_path).start()
    monkeypatch.delenv("CARINA_DISABLE")
    monkeypatch.setenv("CARINA_SCOPE", "galaxy")
    with pytest.raises(ValueError, match="CARINA_SCOPE"):
        carina.Run("e", tmp_path).start()
    assert not carina.is_recording()


def test_failures_never_crash_the_interpreter(tmp_path: Path) -> None:
    # Misuse of every kind in one child interpreter: it must exit normally.
    run_script(
        f"""
        import threading, warnings, carina
        warnings.simplefilter("ignore")
        run = carina.Run("misuse", {str(tmp_path)!r}, constant_watts=1.0).start()
        s = carina.step("s")
        s.__exit__(None, None, None)          # exit before enter
        s.__enter__()
        t = threading.Thread(target=lambda: s.__exit__(None, None, None))
        t.start(); t.join()                   # exit on another thread
        a = carina.step("a").__enter__()
        b = carina.step("b").__enter__()
        a.__exit__(None, None, None)          # out of order
        b.__exit__(None, None, None)
        del a, b, s
        run.finish(); run.finish()
        try:
            run.start()
        except RuntimeError:
            pass
        print("survived")
        """
    )


def test_governor_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy `sometimes`"):
        carina.Governor(policy="sometimes")
    with pytest.raises(ValueError, match="peak_fraction"):
        carina.Governor(policy="throttle:peak_fraction=2")
    with pytest.raises(ValueError, match="at least 1"):
        carina.Governor(nominal=0)
    with pytest.raises(FileNotFoundError, match="cannot read schedule file"):
        carina.Governor(schedule=tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('timezone = "Mars/Olympus"\n')
    with pytest.raises(ValueError, match="unknown time zone"):
        carina.Governor(schedule=bad)
    gov = carina.Governor()
    with pytest.raises(ValueError, match="RFC 3339"):
        gov.set_deadline("tomorrow")
    with pytest.raises(TypeError, match="deadline must be"):
        gov.set_deadline([1])
    import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        gov.set_deadline(datetime.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timeout"):
        gov.permit(timeout=-1)

