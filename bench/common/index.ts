/** Shared benchmark helpers (see each module). */
export { LatencyRecorder } from './hist';
export type { LatencySummary } from './hist';
export { median, RunSet, roundFigure } from './stats';
export { measureLatency, measureThroughput, measureRate, Credit } from './load';
export type { LoopLimits, LatencyResult, ThroughputResult, RateResult } from './load';
export {
  Worker,
  serveWorker,
  emitEvent,
  startServer,
  stopProcess,
  sleep,
  freeTcpPort,
  freeUdpPort,
  tcpAccepts,
} from './proc';
export type { WorkerInit, ServerInit, ServerHandle } from './proc';
export {
  repoRoot,
  writeResultsJson,
  replaceMarkedSection,
  rewriteDocSection,
  markdownTable,
  fmt,
} from './results';
export type { BenchResults } from './results';
export { hotSpots, busyIdleMs, readNewestProfile, formatHotSpots } from './cpuprofile';
export type { CpuProfile, HotSpot, ProfileWindow } from './cpuprofile';
export { benchLogger } from './log';
