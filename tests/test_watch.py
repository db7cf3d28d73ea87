"""What changed on disk: the polling watch of the series' folders, saves by rename or in place, editor droppings ignored."""

from __future__ import annotations

from announcer.run.watch import FolderWatch

from conftest import write_config
from series_files import talk, write_talk


def test_the_watch_sees_saves_by_rename_or_in_place_and_ignores_editor_droppings(tmp_path):
    config = write_config(tmp_path)
    talks = tmp_path / "talks"
    folders = FolderWatch([config, talks, None], settle_seconds=0)
    assert folders.poll() == []
    (talks / ".a.yaml.swp").write_text("swap")
    (talks / "a.yaml~").write_text("backup")
    assert folders.poll() == []
    path = write_talk(config, "a.yaml", talk("A", "2027-03-10 14:00"))
    assert folders.poll() == [str(path)]
    assert folders.poll() == []
    with path.open("a") as file:
        file.write("notes: Reception after.\n")
    assert folders.poll() == [str(path)]
    config.write_text(config.read_text() + "\n")
    path.unlink()
    assert folders.poll() == sorted([str(config), str(path)])
