/** Declarative pipelines: definitions, graph resolution, the runner, the spec and the event log. */
export * from './definition.js';
export { resolveGraph, analyzeGraph, type PipelineGraph, type ResolvedFlow, type ResolvedDataset, type SourceRef, type GraphIssue } from './graph.js';
export { runPipeline, validatePipeline, loadPipeline, type RunPipelineOptions, type RunPipelineResult, type FlowRunResult, type LoadedPipeline, OWNER_PROPERTY, RESET_ALLOWED } from './runner.js';
export { loadSpec, findSpec, parseYaml, validateSpec, libraryFiles, type PipelineSpec, SPEC_FILE_NAMES } from './spec.js';
export { readEvents, listUpdates, subscribePipelineEvents, type PipelineEvent, type PipelineEventListener, type UpdateSummary } from './event-log.js';
export { PipelineState, type FlowCheckpoint } from './state.js';
