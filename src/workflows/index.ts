export { fleetRun } from './fleetRun';
