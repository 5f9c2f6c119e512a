#!/usr/bin/env bash
# Makes the fonts built into kiosk-agent (assets/fonts/) from Debian's fonts-noto-core: Noto Sans,
# Noto Sans Ethiopic and Noto Sans Arabic, regular and bold, subset with fonttools' pyftsubset to
# the scripts of the built-in languages and what operators' language files may plausibly use
# (Latin with its African and Vietnamese-style extensions, Ethiopic, Arabic). Layout tables
# (GSUB, GPOS, GDEF) are kept whole, so shaping is HarfBuzz's on the full fonts; hinting is
# dropped (glyphs are drawn unhinted). The output is committed: building needs neither Python nor
# the Debian package, and every target gets the same bytes.
#
#   bash scripts/fonts.sh          # rewrite assets/fonts/
#   bash scripts/fonts.sh --check  # fail if assets/fonts/ is not what this script makes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
apt_install fonts-noto-core python3-fonttools

src=/usr/share/fonts/truetype/noto
out=assets/fonts
[ "${1:-}" = --check ] && out=$(mktemp -d)

# Latin: ASCII, Latin-1, Extended-A/B, IPA (Hausa ɓ ɗ), spacing modifiers, combining marks
# (Yoruba's tone marks over dotted vowels), Latin Extended Additional (ẹ ọ ṣ), punctuation,
# currency, the dotted circle shapers put under a stray mark.
latin="U+0020-007E,U+00A0-024F,U+0250-02FF,U+0300-036F,U+1AB0-1AFF,U+1DC0-1DFF,U+1E00-1EFF,U+2000-206F,U+20A0-20CF,U+2190-2193,U+2212,U+25CC,U+FEFF"
ethiopic="U+0020-0040,U+00A0,U+1200-139F,U+2D80-2DDF,U+AB00-AB2F,U+25CC"
arabic="U+0020-0040,U+00A0,U+0600-06FF,U+0750-077F,U+08A0-08FF,U+FB50-FDFF,U+FE70-FEFF,U+200C-200F,U+25CC"

subset() {
  local file=$1 unicodes=$2
  /usr/bin/python3 -m fontTools.subset "$src/$file" --unicodes="$unicodes" --layout-features='*' --no-hinting \
    --desubroutinize --name-IDs='*' --name-legacy --notdef-outline --output-file="$out/$file"
}
for w in Regular Bold; do
  subset "NotoSans-$w.ttf" "$latin"
  subset "NotoSansEthiopic-$w.ttf" "$ethiopic"
  subset "NotoSansArabic-$w.ttf" "$arabic"
done

if [ "${1:-}" = --check ]; then
  diff -r "$out" assets/fonts --exclude=OFL.txt --exclude=README.md >/dev/null || {
    echo "assets/fonts/ differs from what scripts/fonts.sh makes from fonts-noto-core; run it and commit"
    exit 1
  }
  echo "assets/fonts/ matches fonts-noto-core"
fi
ls -l assets/fonts/*.ttf | awk '{ s += $5 } END { print "fonts: " s " bytes" }'
