export { blueGreenDeploy } from './blueGreenDeploy';
export { fleetRun } from './fleetRun';
export { rollbackRelease } from './rollbackRelease';
export { rollingUpgrade } from './rollingUpgrade';
export { systemRoles } from './systemRoles';
