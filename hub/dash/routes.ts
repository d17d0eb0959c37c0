import type { FastifyInstance } from "fastify";
export function registerDashboard(_app: FastifyInstance, _o: { base: string }): void {}
