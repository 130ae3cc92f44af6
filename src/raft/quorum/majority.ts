import type { NodeId } from '../types';

/** Outcome of counting votes in a configuration. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest index acknowledged by a majority of `voters`, where `matchOf(id)` gives the index
 * acknowledged by `id` (undefined counts as 0). An empty voter set imposes no limit and yields
 * Number.MAX_SAFE_INTEGER (the neutral element when combined with other configurations).
 * Pure; `voters` is not modified.
 */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number | undefined): number {
  const n = voters.size;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  const srt = scratch(n);
  let k = 0;
  for (const id of voters) {
    const v = matchOf(id) ?? 0;
    // insertion sort, descending: n is small (a handful of voters)
    let j = k;
    while (j > 0 && srt[j - 1]! < v) {
      srt[j] = srt[j - 1]!;
      j--;
    }
    srt[j] = v;
    k++;
  }
  // The (n/2+1)-th largest value is held by a majority.
  return srt[Math.floor(n / 2)]!;
}

/**
 * Counts votes: `voteOf(id)` is true (granted), false (rejected) or undefined (not yet heard).
 * 'won' when a majority granted, 'lost' when a majority can no longer be reached, else
 * 'pending'. An empty voter set wins (by convention, as in etcd).
 */
export function voteResult(voters: ReadonlySet<NodeId>, voteOf: (id: NodeId) => boolean | undefined): VoteResult {
  const n = voters.size;
  if (n === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = voteOf(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(n / 2) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

let scratchArr: number[] = [];
function scratch(n: number): number[] {
  if (scratchArr.length < n) scratchArr = new Array<number>(n).fill(0);
  return scratchArr;
}
