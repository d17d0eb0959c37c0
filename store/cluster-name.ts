/**
 * The cluster a host joins when none is named (`--cluster`, FLOE_CLUSTER). Every Redis key
 * (`floe:{<cluster>}:`) and NATS subject (`floe.<cluster>.`) carries the cluster's name, so
 * hosts that disagree on the default would not see each other: it is set here only.
 */
export const DEFAULT_CLUSTER = "floe";
