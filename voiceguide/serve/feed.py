"""A podcast feed of the rendered sessions: RSS 2.0 with the iTunes and Podcasting 2.0 namespaces."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from xml.etree import ElementTree as ET

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"

ET.register_namespace("itunes", ITUNES)
ET.register_namespace("podcast", PODCAST)


def chapters_json(plan: dict[str, Any]) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters (version 1.2.0) from a plan: one per plan chapter."""
    return {
        "version": "1.2.0",
        "title": plan.get("routine"),
        "chapters": [{"startTime": c["start"], "endTime": c["end"], "title": c["title"]} for c in plan["chapters"]],
    }


def build_feed(sessions: list[dict[str, Any]], url: Callable[[str], str], title: str = "voiceguide sessions") -> bytes:
    """The feed; ``url(path)`` makes an absolute URL (with the access key when there is one)."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = title
    ET.SubElement(channel, "link").text = url("/")
    ET.SubElement(channel, "description").text = "Voice-guided stretch sessions rendered by voiceguide."
    ET.SubElement(channel, "language").text = "en"
    ET.SubElement(channel, "generator").text = "voiceguide"
    ET.SubElement(channel, f"{{{ITUNES}}}author").text = "voiceguide"
    ET.SubElement(channel, f"{{{ITUNES}}}explicit").text = "false"
    ET.SubElement(channel, f"{{{ITUNES}}}category", {"text": "Health & Fitness"})
    ET.SubElement(channel, f"{{{ITUNES}}}image", {"href": url("/icon.png")})
    ET.SubElement(channel, f"{{{PODCAST}}}locked").text = "yes"
    for session in sessions:
        sid = session["id"]
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = session.get("title") or sid
        ET.SubElement(item, "description").text = (
            f"{session.get('title')}: {', '.join(session.get('stretches', []))}"
        )
        ET.SubElement(item, "link").text = url(f"/play/{sid}")
        ET.SubElement(item, "guid", {"isPermaLink": "false"}).text = sid
        ET.SubElement(item, "pubDate").text = formatdate(session.get("created", 0), usegmt=True)
        ET.SubElement(item, "enclosure", {"url": url(f"/sessions/{sid}/audio.mp3"), "length": str(session["bytes"]),
                                          "type": "audio/mpeg"})
        ET.SubElement(item, f"{{{ITUNES}}}duration").text = str(round(session.get("duration", 0)))
        ET.SubElement(item, f"{{{ITUNES}}}image", {"href": url(f"/sessions/{sid}/cover.png")})
        ET.SubElement(item, f"{{{ITUNES}}}explicit").text = "false"
        ET.SubElement(item, f"{{{PODCAST}}}chapters", {"url": url(f"/sessions/{sid}/chapters.json"),
                                                       "type": "application/json+chapters"})
        ET.SubElement(item, f"{{{PODCAST}}}transcript", {"url": url(f"/sessions/{sid}/transcript.vtt"),
                                                         "type": "text/vtt"})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(rss, encoding="utf-8", xml_declaration=False)
