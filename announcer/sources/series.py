"""A series as read from its files: its config and its talks."""

from __future__ import annotations

from dataclasses import dataclass

from announcer.errors import AnnouncerError, InputError
from announcer.sources.config import Config, find_config, load_config
from announcer.sources.courses import with_course_posts
from announcer.sources.talk import Talk
from announcer.sources.talks import TalkSet, load_talks
from announcer.sources.values import did_you_mean


@dataclass
class Loaded:
    """A series' config and talks, as read from its files."""

    config: Config
    talkset: TalkSet

    @property
    def talks(self) -> list[Talk]:
        return self.talkset.talks

    def talk(self, talk_id: str) -> Talk:
        """The talk (or course post) with that id, or an error with a did-you-mean hint."""
        talks = with_course_posts(self.talks)
        if talk_id in talks:
            return talks[talk_id]
        hint = did_you_mean(talk_id, list(talks))
        raise AnnouncerError(f'no talk "{talk_id}" in {self.config.series.talks_dir}{hint}')


def load_series(config_option: str | None, strict: bool = True) -> Loaded:
    """Load the config and every talk; with strict, any error stops here (nothing is sent)."""
    config = load_config(find_config(config_option))
    talkset = load_talks(config.series)
    if strict and talkset.errors:
        raise InputError(talkset.problems)
    return Loaded(config, talkset)
