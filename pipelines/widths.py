"""Full-width ASCII forms (U+FF01..U+FF5E, ideographic space) and their half-width twins.

Chinese input methods produce full-width digits, letters and punctuation (１２３, ＡＢＣ);
folding them to ASCII is always safe, so both file headers and values are folded.
"""

FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
FOLD_TABLE = str.maketrans(FULL_WIDTH, HALF_WIDTH)
