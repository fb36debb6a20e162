import pytest

from rankguard import data
from rankguard.cli import main


@pytest.fixture(autouse=True)
def no_data_dir_override():
    """Every test starts and ends without a --data-dir override, even when it fails."""
    data.set_data_dir(None)
    yield
    data.set_data_dir(None)


def test_env_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    data.set_data_dir(tmp_path / "flag")
    assert data.data_dir() == tmp_path / "flag"


def test_missing_dataset_message_says_where_and_what(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(data.DatasetNotFoundError) as exc:
        data.dataset_path("ml-100k")
    msg = str(exc.value)
    assert str(tmp_path / "ml-100k" / "u.data") in msg and "RANKGUARD_DATA" in msg


def test_unknown_dataset_lists_known_names():
    with pytest.raises(KeyError) as exc:
        data.dataset_path("nope")
    assert "ml-1m" in str(exc.value)


def test_present_file_found(tmp_path, monkeypatch):
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "users.dat").write_text("1 5\n")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.dataset_path("ml-1m", "users.dat").read_text() == "1 5\n"
    assert data.available("ml-1m") and not data.available("ml-100k")


def test_cli_data_dir_flag(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "data"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
