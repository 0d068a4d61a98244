"""Gutenberg boilerplate: header, credits, footer and licence gone, the body untouched."""

from __future__ import annotations

from pipeline.text.gutenberg import header_title, normalize_newlines, strip_boilerplate
from sources.samples.books import gutenberg_file

BODY = "CHAPTER I\n\nIt was a quiet morning in the valley.\n\nThe end of the story came later."


def test_modern_markers() -> None:
    text = gutenberg_file("A Title", "Someone", 12, BODY)
    assert strip_boilerplate(text) == BODY
    assert header_title(text) == "A Title"


def test_markers_of_copyrighted_books_and_of_four_asterisks() -> None:
    for start, end in [("*** START OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK T ***",
                        "*** END OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK T ***"),
                       ("**** START OF THIS PROJECT GUTENBERG EBOOK T ****", "**** END OF THIS PROJECT GUTENBERG EBOOK T ****"),
                       ("*** START OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK T ***",
                        "End of the Copyrighted Project Gutenberg EBook of T")]:
        text = f"The Project Gutenberg EBook of T\nHEADER LICENCE\n\n{start}\n\n{BODY}\n\n{end}\nFOOTER LICENCE\n"
        assert strip_boilerplate(text) == BODY


def test_a_licence_between_two_start_markers_goes_with_the_header() -> None:
    # The reference cleaner starts the text over at every START marker of its first 600 lines:
    # the licence block between two of them is header, not book.
    marker = "*** START OF THE PROJECT GUTENBERG EBOOK A TITLE ***\n"
    licence = "".join(f"Project Gutenberg-tm licence paragraph {i}.\n" for i in range(30))
    text = gutenberg_file("A Title", "Someone", 12, BODY)
    assert text.count(marker) == 1
    doubled = text.replace(marker, marker + licence + marker)
    assert strip_boilerplate(doubled) == BODY
    # A header longer than 600 lines still ends at its one marker.
    long_header = "Front matter line.\n" * 700 + text
    assert strip_boilerplate(long_header) == BODY


def test_old_small_print_and_end_line() -> None:
    text = ("Project Gutenberg's Etext of Old Book\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
            "This etext was produced by a volunteer.\n\n" + BODY + "\n\nEnd of Project Gutenberg's Old Book\nlicence...")
    assert strip_boilerplate(text) == BODY


def test_text_without_markers_is_unchanged() -> None:
    assert strip_boilerplate("  " + BODY + "\n") == BODY
    assert header_title(BODY) == ""


def test_crlf_file_keeps_its_body_after_credits() -> None:
    # Real Gutenberg files use CRLF: a CRLF blank line ends the credits paragraph.
    text = ("Title: A Title\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK A TITLE ***\r\n\r\n"
            "Produced by Someone\r\nand Others\r\n\r\n" + BODY.replace("\n", "\r\n")
            + "\r\n\r\n*** END OF THIS PROJECT GUTENBERG EBOOK A TITLE ***\r\nlicence\r\n")
    assert strip_boilerplate(normalize_newlines(text)) == BODY
    assert header_title(text) == "A Title"


def test_small_print_closed_without_asterisk_and_produced_from_credits() -> None:
    text = ("Project Gutenberg Etext of Old Book\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\n"
            "Why is this \"Small Print!\" statement here?\n*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.12.12.00*END*\n\n\n"
            "This etext was produced from the 1908 edition by A. Volunteer\n\n" + BODY
            + "\n\nEnd of Project Gutenberg Etext of Old Book\n")
    assert strip_boilerplate(text) == BODY


def test_licence_without_end_marker_and_blank_line_runs() -> None:
    text = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + BODY + "\n\n*** START: FULL LICENSE ***\nTHE FULL LICENSE"
    assert strip_boilerplate(text) == BODY
    # 20k blank lines (and lines of spaces) around the markers: read once, not once per line.
    blank = "\n" * 20_000 + " \n" * 20_000
    assert strip_boilerplate(blank + "*** START OF THE PROJECT GUTENBERG EBOOK X ***" + blank + BODY + blank) == BODY


# --- the edition's transcriber's notes --------------------------------------------------------

START_LINE = "*** START OF THE PROJECT GUTENBERG EBOOK THE LANTERN KEEPER ***"
END_LINE = "*** END OF THE PROJECT GUTENBERG EBOOK THE LANTERN KEEPER ***"
TITLE_PAGE = "THE LANTERN KEEPER\n\nby Mara Quill"
CHAPTER_ONE = ("CHAPTER I\n\nThe lamp on the headland was lit at dusk, as it had been for forty years.\n\n"
               "[Transcriber's note: of?] The keeper counted the ships that passed.")
CHAPTER_TWO = "CHAPTER II\n\nTranscriber's notes, she said, were what her father called his logbook."
LAST_PARAGRAPH = "THE END"


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def test_transcribers_notes_at_head_and_tail_crlf() -> None:
    text = crlf(
        "Title: The Lantern Keeper\n\n" + START_LINE + "\n\n\n\nProduced by A. Volunteer\n\n\n\n"
        "Transcriber's Note:\n\nSpelling is as in the 1901 edition. This Project Gutenberg\n"
        "edition keeps the printer's errors.\n\n\n\n"
        + TITLE_PAGE + "\n\n\n\n" + CHAPTER_ONE + "\n\n"
        "[Transcriber's Note: a table of tides was here in the\nprinted book [see p. 12].]\n\n"
        "The tide came in.\n"
        "[Note Project Gutenberg: music transcribed in Lilypond format]\n"
        "\\relative c' { c4 d e f }\n\n\n\n"
        + CHAPTER_TWO + "\n\n" + LAST_PARAGRAPH + "\n\n\n\n"
        "Transcriber's Notes\n\n\n- p. 12: \"tdie\" changed to \"tide\".\n- Footnotes moved to the end of\n"
        "  chapters, as is Project Gutenberg practice.\n\n\n\n\n\n"
        "End of the Project Gutenberg EBook of The Lantern Keeper\n\n" + END_LINE
        + "\n\nUpdated editions will replace\n"
    )
    assert strip_boilerplate(text) == (
        TITLE_PAGE + "\n\n\n\n" + CHAPTER_ONE + "\n\n"
        "The tide came in.\n"
        "\\relative c' { c4 d e f }\n\n\n\n"
        + CHAPTER_TWO + "\n\n" + LAST_PARAGRAPH
    )


def test_note_at_tail_in_the_last_division_and_bracketed_at_head() -> None:
    text = (START_LINE + "\n[Transcriber's Note: This etext was produced from\nThe Harbour Magazine, 1950.]\n\n"
            + TITLE_PAGE + "\n\n\n" + CHAPTER_ONE + "\n\n" + LAST_PARAGRAPH
            + "\n\nTranscriber's note: obvious printer's errors corrected.\n")
    assert strip_boilerplate(text) == TITLE_PAGE + "\n\n\n" + CHAPTER_ONE + "\n\n" + LAST_PARAGRAPH


def test_notes_whose_extent_is_unsure_stay() -> None:
    # A headed note in the middle of the book: where it ends is not known, so it stays.
    middle = "Transcriber's Note:\n\nThe map of the coast is not reproduced."
    # A bracketed note holding a blank line, or closed inside a line, is not bounded on lines of its own.
    spread = "[Transcriber's Note: the next page\n\nwas blank.]"
    closed_in_line = "[Transcriber's Note: blank page.] The keeper slept."
    body = "\n\n\n\n".join([TITLE_PAGE, middle, CHAPTER_ONE, spread, closed_in_line, CHAPTER_TWO, LAST_PARAGRAPH])
    assert strip_boilerplate(START_LINE + "\n" + body + "\n" + END_LINE) == body


def test_a_note_that_is_all_the_body_holds_stays() -> None:
    note = "Transcriber's Notes:\n\nThis file holds only this note."
    assert strip_boilerplate(START_LINE + "\n" + note + "\n" + END_LINE) == note
    assert strip_boilerplate(START_LINE + "\nTranscriber's Notes\n\n\n- one\n- two\n" + END_LINE) == (
        "Transcriber's Notes\n\n\n- one\n- two")


def test_notes_without_a_marker_stay() -> None:
    # Books3 text carries no Gutenberg marker: nothing in it is the Gutenberg edition's.
    text = "[Transcriber's Note: kept.]\n\n" + TITLE_PAGE + "\n\nTranscriber's Note: kept too."
    assert strip_boilerplate(text) == text
