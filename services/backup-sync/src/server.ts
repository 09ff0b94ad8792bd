import { runService } from '@scs/common';
import { buildApp } from './app';
import { BackupConfig } from './config';

runService('backup-sync', BackupConfig, (config, deps) => buildApp(config, { ...deps, background: true }));
