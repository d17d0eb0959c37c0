/**
 * Durations for agent tasks (`timer` opts.duration, `500ms`, `90s`, `1h30m`, a bare number =
 * seconds). One parser for the whole project: the flow loader's, so a duration that loads is a
 * duration that runs.
 */
export { formatDuration, parseDuration } from "../flows/duration.js";
