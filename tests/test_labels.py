import pytest

from phonegrade.labels import SCRATCH_LABELS, SIDE_LABELS, canonical_label


@pytest.mark.parametrize(("name", "label"), [
    ("MAJORSCRACH", "major_scratch"), ("MINOR_SCRACH", "minor_scratch"), ("NO_SCRACH", "no_scratch"),
    ("major_scratch", "major_scratch"), ("Minor-Scratch", "minor_scratch"), ("no scratch", "no_scratch"),
])
def test_scratch_folder_aliases_map_to_canonical_labels(name, label):
    assert canonical_label("scratch", name) == label


@pytest.mark.parametrize(("name", "label"), [("Front", "front"), ("BACK", "back"), ("None", "none"),
                                             ("back_side", "back"), ("rear", "back"), ("other", "none")])
def test_side_folder_aliases_map_to_canonical_labels(name, label):
    assert canonical_label("side", name) == label


def test_canonical_labels_map_to_themselves():
    assert [canonical_label("side", x) for x in SIDE_LABELS] == list(SIDE_LABELS)
    assert [canonical_label("scratch", x) for x in SCRATCH_LABELS] == list(SCRATCH_LABELS)


def test_unknown_class_is_a_clear_error_listing_the_accepted_names():
    with pytest.raises(ValueError, match="unknown side class 'sideways'.*front, back, none"):
        canonical_label("side", "sideways")
    with pytest.raises(ValueError, match="unknown scratch class"):
        canonical_label("scratch", "front")


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        canonical_label("colour", "red")
