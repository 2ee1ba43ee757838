"""`keras_art.user_input`: what a user passed, read and checked; each failure a
`ParameterError` in the caller's parameter words."""

import pytest

from keras_art.errors import ParameterError
from keras_art.user_input import (
    check_output_folder,
    check_positive_int,
    parse_host_port,
    read_json_or_yaml,
)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_check_positive_int_names_the_parameter(bad):
    assert check_positive_int(3, "top_k") == 3
    with pytest.raises(ParameterError) as err:
        check_positive_int(bad, "top_k")
    assert err.value.params == ("top_k",)


def test_read_json_or_yaml_reads_both_and_names_the_parameter(tmp_path):
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.yaml").write_text("x: 2\n")
    (tmp_path / "empty.yml").write_text("")
    (tmp_path / "bad.json").write_text("{")
    assert read_json_or_yaml(tmp_path / "a.json", "config_file") == {"x": 1}
    assert read_json_or_yaml(tmp_path / "b.yaml", "config_file") == {"x": 2}
    assert read_json_or_yaml(tmp_path / "empty.yml", "config_file") == {}
    with pytest.raises(ParameterError) as err:
        read_json_or_yaml(tmp_path / "bad.json", "config_file")
    assert err.value.params == ("config_file",)


def test_check_output_folder_refuses_a_file_on_the_way(tmp_path):
    assert check_output_folder(tmp_path / "new" / "deeper", "out") == (
        tmp_path / "new" / "deeper"
    )
    (tmp_path / "f").write_text("x")
    for bad in (tmp_path / "f", tmp_path / "f" / "below"):
        with pytest.raises(ParameterError) as err:
            check_output_folder(bad, "out")
        assert err.value.params == ("out",) and "not a folder" in str(err.value)
    assert not (tmp_path / "new").exists()  # checked, nothing made


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("127.0.0.1:8470", ("127.0.0.1", 8470)),
        ("head-node.cluster:5050", ("head-node.cluster", 5050)),
        ("h:65535", ("h", 65535)),
        ("h:0", None),
        ("h:65536", None),
        ("h:", None),
        (":5050", None),
        ("nohost", None),
        ("grpc://h:5050", None),
        ("my host:5050", None),
        ("h:50x", None),
    ],
)
def test_parse_host_port(text, parsed):
    assert parse_host_port(text) == parsed
