import { runService } from '@scs/common';
import { buildApp } from './app';
import { BackupConfig } from './config';

runService('backup-sync', BackupConfig, buildApp);
