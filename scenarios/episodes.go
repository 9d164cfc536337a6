package scenarios

import (
	"fmt"
	"math"
	"time"
)

// maxEpisodes bounds Spec.Episodes.
const maxEpisodes = 20

// episodeSpread spreads the episodes' starts: episode i starts a further
// (i·φ mod 1) × episodeSpread late, so that the episodes meet the
// workload's periodic calls (heartbeats, lookups, probes: every 100 to
// 200 ms, from the traffic's start) at different phases. Without it every
// episode would meet them as the first did, and the race it repeats would
// not be drawn again.
const episodeSpread = 250 * time.Millisecond

// episodeOffset is episode i's extra delay.
func episodeOffset(i int) Duration {
	_, frac := math.Modf(float64(i) * math.Phi)
	return Duration(frac * float64(episodeSpread))
}

// repeatEpisodes writes a spec's episodes out: the fault timeline once
// per episode, each EpisodeEvery after the one before, and the workload
// lengthened to hold them. The spec is then validated as written out.
func (s *Spec) repeatEpisodes() error {
	if s.Episodes == 0 { // the range is checked where it is decoded (limits)
		s.Episodes = 1
	}
	if s.Episodes == 1 {
		if s.EpisodeEvery != 0 {
			return s.errf(s.Line, "episode_every %s without episodes: set episodes (2 to %d)", s.EpisodeEvery, maxEpisodes)
		}
		return nil
	}
	if len(s.Faults) == 0 {
		return s.errf(s.Line, "episodes %d: no fault to repeat", s.Episodes)
	}
	first, end := s.Faults[0].At, Duration(0)
	for _, f := range s.Faults {
		if f.At == 0 {
			return s.errf(f.Line, "episodes %d: a start-up fault (at 0) cannot repeat", s.Episodes)
		}
		if f.For == 0 {
			return s.errf(f.Line, "episodes %d: a fault without for lasts to the end of the run and cannot repeat", s.Episodes)
		}
		first, end = min(first, f.At), max(end, f.At+f.For)
	}
	if s.EpisodeEvery == 0 {
		s.EpisodeEvery = s.Workload.Duration - first
	}
	if span := end - first + Duration(episodeSpread); s.EpisodeEvery <= span {
		return s.errf(s.Line, "episode_every %s: episodes would overlap (one spans %s from its first fault to its last's end, and starts up to %s late)", s.EpisodeEvery, end-first, episodeSpread)
	}
	steps := s.Faults
	s.Faults = make([]FaultStep, 0, len(steps)*s.Episodes)
	for i := range s.Episodes {
		for _, f := range steps {
			f.At += Duration(i)*s.EpisodeEvery + episodeOffset(i)
			s.Faults = append(s.Faults, f)
		}
	}
	s.Workload.Duration += Duration(s.Episodes-1)*s.EpisodeEvery + Duration(episodeSpread)
	return nil
}

// EpisodeMiss is the probability that a defect showing in each episode
// with probability p shows in none of n.
func EpisodeMiss(p float64, n int) float64 { return math.Pow(1-p, float64(n)) }

// EpisodePower states what n episodes can see: the chance that a defect
// which shows in one episode of 2 (and of 4) shows in none of the n, and
// the share of episodes a defect must show in to be seen with 95 %
// probability. Empty for a single episode.
func EpisodePower(n int) string {
	if n <= 1 {
		return ""
	}
	need := 1 - math.Pow(0.05, 1/float64(n))
	return fmt.Sprintf("%d episodes judged together: a defect that shows in 1 episode of 2 is missed with probability %s (1 of 4: %s); 95 %% power for one that shows in %s of episodes",
		n, percent(EpisodeMiss(0.5, n)), percent(EpisodeMiss(0.25, n)), percent(need))
}

func percent(p float64) string {
	v := 100 * p
	switch {
	case v < 0.1:
		return fmt.Sprintf("%.2g %%", v)
	case v < 10:
		return fmt.Sprintf("%.1f %%", v)
	}
	return fmt.Sprintf("%.0f %%", v)
}
