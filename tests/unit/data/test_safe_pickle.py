import collections
import os
import pickle

import numpy as np
import pytest

from asr.data.safe_pickle import safe_load
from asr.errors import DataError


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _dump(tmp_path, obj, protocol=pickle.HIGHEST_PROTOCOL, name="data.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_malicious_reduce_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = _dump(tmp_path, {"id": ["x"], "raw_text": _Exploit(marker)})
    with pytest.raises(DataError) as err:
        safe_load(path)
    message = str(err.value)
    assert str(path) in message
    assert "refused to unpickle" in message
    assert "system" in message
    assert "only plain containers and numpy arrays are allowed" in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_arrays_and_containers_load(tmp_path, protocol):
    data = {
        "id": np.array(["video_1_1", "video_1_2"]),
        "raw_text": np.array(["好咯", "蛮好"], dtype=object),
        "duration": np.array([1.5, 2.25], dtype=np.float32),
        "count": np.int64(2),
        "tags": {"a", "b"},
        "frozen": frozenset({1}),
        "ordered": collections.OrderedDict(a=1),
        "by_default": collections.defaultdict(list, {"k": [1]}),
        "blob": b"\x00\x01",
        "complex": 1 + 2j,
    }
    loaded = safe_load(_dump(tmp_path, data, protocol))
    assert loaded["id"].tolist() == ["video_1_1", "video_1_2"]
    assert loaded["raw_text"].dtype == object and loaded["raw_text"].tolist() == ["好咯", "蛮好"]
    np.testing.assert_array_equal(loaded["duration"], data["duration"])
    assert loaded["count"] == 2
    assert loaded["tags"] == {"a", "b"} and loaded["frozen"] == frozenset({1})
    assert loaded["ordered"] == {"a": 1} and loaded["by_default"]["k"] == [1]
    assert loaded["blob"] == b"\x00\x01" and loaded["complex"] == 1 + 2j


def test_numpy_1x_module_path_is_accepted(tmp_path):
    # numpy 1.x pickles name numpy.core.multiarray; numpy 2 moved it to numpy._core.
    raw = pickle.dumps(np.array([1, 2], dtype=np.int16), protocol=2).replace(b"numpy._core", b"numpy.core")
    path = tmp_path / "old.pkl"
    path.write_bytes(raw)
    assert safe_load(path).tolist() == [1, 2]


def test_pandas_dataframe_is_refused(tmp_path):
    pd = pytest.importorskip("pandas")
    path = _dump(tmp_path, pd.DataFrame({"id": ["video_1_1"], "raw_text": ["好咯"]}))
    with pytest.raises(DataError, match=r"refused to unpickle pandas\."):
        safe_load(path)


@pytest.mark.parametrize("global_name", [b"builtins\neval", b"builtins\ngetattr", b"subprocess\nPopen"])
def test_dangerous_globals_are_refused(tmp_path, global_name):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"c" + global_name + b"\n(S'1'\ntR.")
    with pytest.raises(DataError, match="refused to unpickle"):
        safe_load(path)


def test_truncated_pickle_is_a_data_error(tmp_path):
    raw = pickle.dumps({"id": list(range(100)), "raw_text": ["x"] * 100}, protocol=4)
    path = tmp_path / "cut.pkl"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"cut\.pkl: truncated"):
        safe_load(path)


def test_garbage_and_missing_file_are_data_errors(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match=r"garbage\.pkl"):
        safe_load(garbage)
    with pytest.raises(DataError, match=r"absent\.pkl: cannot open"):
        safe_load(tmp_path / "absent.pkl")
