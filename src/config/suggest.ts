// "Did you mean ...?" for a mistyped key, flag or value: the closest known name by edit distance, when it is
// close enough to be a plausible typo.

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const rows: number[][] = Array.from({ length: s.length + 1 }, (_, i) => Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const row = rows[i]!;
      const above = rows[i - 1]!;
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row[j] = best;
    }
  }
  return rows[s.length]![t.length]!;
}

/**
 * The known name closest to `input`, if within a third of its length (at least 2 edits allowed), or else one
 * that is a prefix of it or it of them; undefined when nothing is plausible.
 */
export function closestName(input: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const distance = editDistance(input, name);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(2, Math.floor(Math.max(input.length, best?.length ?? 0) / 3));
  if (bestDistance <= allowed) return best;
  // A name with a word too many or too few ("slow-consumer-policy" for "slow-consumer"): the longest known
  // name that is a prefix of the input, or that the input is a prefix of.
  const lowered = input.toLowerCase();
  const related = known.filter((name) => name.length >= 4 && lowered.length >= 4
    && (lowered.startsWith(name.toLowerCase()) || name.toLowerCase().startsWith(lowered)));
  return related.sort((a, b) => b.length - a.length)[0];
}
