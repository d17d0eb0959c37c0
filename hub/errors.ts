/**
 * The error model lives in flows/errors.ts, where every layer can reach it (store/, agent/
 * and flows/ may not import hub/). Kept so that hub code and callers importing it here
 * keep working.
 */
export * from "../flows/errors.js";
